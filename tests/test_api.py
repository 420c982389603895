"""The Python API (`import vidpipe`): labels in memory as they are produced, typed results and
errors, typed config overrides, watch and live handles with callbacks that never hold the job up."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

import vidpipe
from tests.media import random_bytes, write_video
from tests.processes import wait_for
from tests.stages.jobs.test_label_job import photo

pytestmark = pytest.mark.timeout(180)
CATS = ("tiger cat", "Egyptian cat", "tabby")


@pytest.fixture(scope="module")
def cat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("cat") / "cat.mp4", frames=24, width=160, height=120, fps=12,
                       photo=photo("chelsea"))


def test_label_in_memory_gives_every_frame_in_order_and_a_typed_summary(cat: Path, no_leaks: None) -> None:
    run = vidpipe.label(cat, backend="cpu")
    results = list(run)
    assert [r.frame for r in results] == list(range(24)) and {r.video for r in results} == {"cat"}
    assert all(isinstance(r, vidpipe.FrameResult) and r.label in CATS for r in results)
    assert results[3].t == pytest.approx(3 / 12, abs=1e-3) and len(results[0].top5) == 5
    assert results[0].to_dict()["names"][0] in CATS and 0 < (results[0].score or 0) <= 1
    summary = run.summary()
    assert summary.ok and summary.exit_code == 0 and summary.out is None and summary.dropped_results == 0
    video = summary["cat"]
    assert video.status == "done" and video.frames == 24 and video.label in CATS and video.outputs == ()
    assert video.segments and video.segments[0].name in CATS
    assert json.loads(json.dumps(summary.to_dict()))["videos"][0]["top"][0]["name"] in CATS
    assert run.status().state == "done" and run.exit_code == 0


def test_label_into_a_folder_writes_the_usual_outputs_and_reports_bad_inputs(cat: Path, tmp_path: Path) -> None:
    broken = random_bytes(tmp_path / "broken.mp4", 3000)
    run = vidpipe.label([cat, broken], out=tmp_path / "out", video=False)
    summary = run.summary(timeout=120)
    assert summary.exit_code == 1 and not summary.ok
    assert [v.video for v in summary.failed] == ["broken.mp4"] and "not a readable video" in summary["broken.mp4"].error
    assert set(summary["cat"].outputs) >= {"cat.jsonl", "cat.segments.json", "cat.vtt"}
    assert (tmp_path / "out" / "summary.csv").is_file() and (tmp_path / "out" / "index.html").is_file()
    frame = summary.to_pandas()  # pandas: a dev dependency, not vidpipe's
    assert list(frame["video"]) == ["broken.mp4", "cat"] and frame.loc[1, "label"] in CATS


def test_wrong_settings_are_typed_errors_before_anything_runs(cat: Path, tmp_path: Path) -> None:
    with pytest.raises(vidpipe.ConfigError, match=r"backend\.name: unknown backend 'tpu' \(valid: cpu, sim"):
        vidpipe.label(cat, tmp_path / "o1", backend="tpu")
    with pytest.raises(vidpipe.ConfigError, match=r"preprocess\.workers: expected an integer or auto, got 'two'"):
        vidpipe.label(cat, tmp_path / "o2", preprocess={"workers": "two"})
    with pytest.raises(vidpipe.ConfigError, match=r"output\.extra: unknown output 'frames-xls'"):
        vidpipe.label(cat, tmp_path / "o3", output={"extra": ["frames-xls"]})
    assert not any((tmp_path / name).exists() for name in ("o1", "o2", "o3"))


def test_config_replace_is_typed_and_checked(tmp_path: Path) -> None:
    config = vidpipe.Config().replace(backend={"name": "sim", "max_batch": 8}, output={"dir": str(tmp_path)})
    assert config.backend.name == "sim" and config.backend.max_batch == 8 and config.output.dir == str(tmp_path)
    assert config.replace(backend="cpu").backend == vidpipe.Config().backend.__class__(name="cpu", max_batch=8)
    with pytest.raises(vidpipe.ConfigError, match=r"output: unknown key 'dirr' \(valid: .*dir"):
        config.replace(output={"dirr": "x"})
    path = tmp_path / "job.yaml"
    path.write_text("backend:\n  name: sim\noutput:\n  dir: res\n")
    loaded = vidpipe.load_config(path)
    assert loaded.backend.name == "sim" and loaded.output.dir == str(tmp_path / "res")


def test_a_slow_loop_never_holds_the_job_up(cat: Path) -> None:
    """The caller reads nothing until the job ended: the job does not wait for it."""
    run = vidpipe.label(cat, backend="cpu")
    summary = run.summary(timeout=120)
    assert summary.ok and len(list(run)) == 24  # buffered meanwhile, all of them


def test_watch_calls_back_for_each_new_file_and_stops(cat: Path, tmp_path: Path, no_leaks: None) -> None:
    incoming = tmp_path / "in"
    incoming.mkdir()
    seen: list[vidpipe.FrameResult] = []
    done = threading.Event()

    finished: list[vidpipe.VideoDone] = []

    def on_event(event: vidpipe.VideoDone) -> None:
        finished.append(event)
        done.set()

    watcher = vidpipe.watch(incoming, tmp_path / "out", on_result=seen.append, on_event=on_event,
                            watch={"poll_s": 0.2, "settle_s": 0.3})
    with watcher:
        (incoming / "cat.mp4").write_bytes(cat.read_bytes())
        assert done.wait(60), "the new file was not labeled"
        assert watcher.status().state == "running"
    assert watcher.status().state == "done" and watcher.exit_code == 0
    assert [(e.stream, e.frames, e.error) for e in finished] == [("cat", 24, "")]
    assert [r.frame for r in seen] == list(range(24)) and seen[0].video == "cat"


def test_live_streams_come_and_go_and_events_reach_the_caller(cat: Path, tmp_path: Path, no_leaks: None) -> None:
    events: list[vidpipe.LiveEvent] = []
    results: list[vidpipe.FrameResult] = []

    def slow(result: vidpipe.FrameResult) -> None:
        results.append(result)
        time.sleep(0.05)  # slower than the camera: results queue up, the job goes on

    cam = vidpipe.live([{"uri": str(cat), "name": "one", "loop": True}], out=tmp_path / "out",
                       on_event=events.append, on_result=slow)
    with cam:
        wait_for(lambda: any(e.kind == "label" for e in events), 60, "a label event")
        assert [s["name"] for s in cam.streams()] == ["one"]
        cam.add_stream(cat, name="two", loop=True)
        with pytest.raises(vidpipe.ConfigError, match="already exists"):
            cam.add_stream(cat, name="two")
        wait_for(lambda: any(e.stream == "two" for e in events), 60, "stream two's first event")
        cam.remove_stream("two")
        assert cam.status().state == "running"
    assert cam.status().state == "done"
    assert {e.stream for e in events if e.kind == "label"} == {"one", "two"}
    assert events[0].label in CATS and events[0].to_dict()["stream"] == events[0].stream
    assert results and results[0].video in ("one", "two")

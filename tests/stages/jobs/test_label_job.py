"""`vidpipe label` end to end: real processes, real model, generated videos, bad inputs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data

from tests.media import mjpeg_avi_claiming, random_bytes, truncate, write_video
from tests.processes import children, finish, wait_for, wait_for_child
from vidpipe.stages.jobs.cli import main

pytestmark = pytest.mark.timeout(180)


def photo(name: str) -> np.ndarray:
    return cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("clips")
    write_video(d / "cat.mp4", frames=20, width=320, height=240, fps=25, photo=photo("chelsea"))
    write_video(d / "pattern.mkv", frames=37, width=176, height=144, fps=30)
    return d


def test_labels_every_frame_in_order_with_real_labels(
    clips: Path, tmp_path: Path, start_method: str, no_leaks: None
) -> None:
    out = tmp_path / "out"
    args = ["label", str(clips), "--out", str(out), "--batch", "4", "--workers", "2", "--start-method", start_method]
    code = main([*args, "--no-progress"])
    assert code == 0
    cat = jsonl(out / "cat.jsonl")
    assert [r["frame"] for r in cat] == list(range(20))
    assert [r["t"] for r in cat] == pytest.approx([i / 25 for i in range(20)], abs=1e-3)
    assert all(r["names"][0] in ("tiger cat", "Egyptian cat", "tabby") for r in cat)
    assert len(cat[0]["top5"]) == 5 and len(cat[0]["scores"]) == 5 and cat[0]["latency_ms"] > 0
    assert [r["frame"] for r in jsonl(out / "pattern.jsonl")] == list(range(37))
    segments = json.loads((out / "cat.segments.json").read_text())
    assert segments["segments"][0]["name"] in ("tiger cat", "Egyptian cat", "tabby")
    assert (out / "cat.segments.csv").read_text().count("\n") >= 2
    for name, frames, size, fps in (("cat", 20, (320, 240), 25), ("pattern", 37, (176, 144), 30)):
        with av.open(str(out / f"{name}.mp4")) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
            assert (stream.width, stream.height) == size and float(stream.average_rate) == pytest.approx(fps)
            assert sum(1 for _ in container.decode(stream)) == frames


def test_bad_inputs_are_reported_and_the_rest_is_processed(
    clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_leaks: None
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "zero.mp4").write_bytes(b"")
    random_bytes(bad / "noise.mp4")
    truncate(write_video(tmp_path / "long.mkv", frames=60, width=160, height=120), bad / "cut.mkv")
    out = tmp_path / "out"
    args = [
        "label",
        str(clips / "cat.mp4"),
        str(bad),
        str(tmp_path / "missing.mp4"),
        str(tmp_path / "nothing-here"),
        "--out",
        str(out),
        "--no-video",
        "--no-progress",
    ]
    (tmp_path / "nothing-here").mkdir()
    code = main(args)
    assert code == 1
    assert len(jsonl(out / "cat.jsonl")) == 20  # the good file is complete
    cut = jsonl(out / "cut.jsonl")  # the truncated file keeps the frames that decoded
    assert 0 < len(cut) < 60 and [r["frame"] for r in cut] == list(range(len(cut)))
    assert "truncated" in json.loads((out / "cut.segments.json").read_text())["error"]
    err = capsys.readouterr().err
    for needle in (
        "zero.mp4: empty file",
        "noise.mp4: not a readable video",
        "missing.mp4: no such file",
        "nothing-here: folder has no video files",
        "cut.mkv: decoded",
    ):
        assert needle in err
    assert "Traceback" not in err


def test_config_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("backend:\n  name: gpu\n")
    assert main(["run", str(cfg)]) == 2
    assert "backend.name: unknown backend 'gpu' (valid: cpu, sim, alveo, alveo-emu)" in capsys.readouterr().err
    cfg.write_text("backend:\n  max_batch: eight\n")
    assert main(["run", str(cfg)]) == 2
    assert f"{cfg}: backend.max_batch: expected an integer or auto, got 'eight'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("victim_name", ["preprocess", "sink"])
def test_kill_9_of_a_stage_stops_the_job_cleanly(victim_name: str, tmp_path: Path) -> None:
    long = write_video(tmp_path / "long.mp4", frames=400, width=640, height=360)
    out = tmp_path / "out"
    slow = tmp_path / "slow.yaml"  # a slow card (20 ms per image) so the job is still running when we kill
    slow.write_text("backend:\n  name: sim\n  max_batch: 1\n  sim:\n    per_image_ms: 20\n")
    cmd = ["label", str(long), "--out", str(out), "--config", str(slow), "--no-progress", "--workers", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "vidpipe.stages.jobs.cli", *cmd], stderr=subprocess.PIPE, text=True)
    try:
        victim = wait_for_child(proc.pid, victim_name)
        part = out / "long.jsonl.part"
        wait_for(lambda: part.exists() and part.read_text().count("\n") >= 10)  # labeling is under way
        subprocess.run(["kill", "-9", str(victim)], check=True)
        err = finish(proc, 60)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert victim_name in err and "killed by signal 9" in err and "Traceback" not in err
    assert not children(proc.pid)
    assert not list(Path("/dev/shm").glob(f"vidpipe_{proc.pid}_*"))
    assert not list(out.glob("*.part"))  # no half-written output file
    if victim_name == "preprocess":  # the sink survived: what it wrote so far is closed and playable
        with av.open(str(out / "long.mp4")) as container:
            assert sum(1 for _ in container.decode(video=0)) >= 10


@pytest.mark.slow
def test_ctrl_c_drains_and_finalizes_every_output(tmp_path: Path) -> None:
    long = write_video(tmp_path / "long.mp4", frames=400, width=320, height=240)
    out = tmp_path / "out"
    slow = tmp_path / "slow.yaml"
    slow.write_text("backend:\n  name: sim\n  max_batch: 1\n  sim:\n    per_image_ms: 20\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vidpipe.stages.jobs.cli",
            "label",
            str(long),
            "--out",
            str(out),
            "--config",
            str(slow),
            "--no-progress",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        part = out / "long.jsonl.part"
        wait_for(lambda: part.exists() and part.read_text().count("\n") >= 10)
        proc.send_signal(signal.SIGINT)
        err = finish(proc, 30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    done = jsonl(out / "long.jsonl")
    assert 10 <= len(done) < 400 and [r["frame"] for r in done] == list(range(len(done)))
    assert json.loads((out / "long.segments.json").read_text())["error"] == "interrupted"
    with av.open(str(out / "long.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(done)
    assert not list(out.glob("*.part"))
    assert not list(Path("/dev/shm").glob(f"vidpipe_{proc.pid}_*"))


def test_dots_in_names_do_not_clash(tmp_path: Path, no_leaks: None) -> None:
    write_video(tmp_path / "a.b.mp4", frames=3)
    write_video(tmp_path / "a.c.mp4", frames=4)
    out = tmp_path / "out"
    assert (
        main(
            [
                "label",
                str(tmp_path / "a.b.mp4"),
                str(tmp_path / "a.c.mp4"),
                "--out",
                str(out),
                "--backend",
                "sim",
                "--no-progress",
            ]
        )
        == 0
    )
    assert len(jsonl(out / "a.b.jsonl")) == 3 and len(jsonl(out / "a.c.jsonl")) == 4
    assert (out / "a.b.mp4").exists() and (out / "a.c.segments.json").exists()


def test_a_misreported_frame_count_is_reported_and_every_frame_labeled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = mjpeg_avi_claiming(tmp_path / "liar.avi", frames=20, claimed=40)
    out = tmp_path / "out"
    assert main(["label", str(video), "--out", str(out), "--backend", "sim", "--no-progress"]) == 1
    assert [r["frame"] for r in jsonl(out / "liar.jsonl")] == list(range(20))
    err = capsys.readouterr().err
    assert "liar.avi: decoded 20 of 40 frames" in err and "Traceback" not in err
    with av.open(str(out / "liar.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 20


@pytest.mark.parametrize("what", ["missing file", "empty folder", "only a broken file"])
def test_nothing_to_label_is_one_line_per_input_and_creates_nothing(
    what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = {"missing file": tmp_path / "missing.mp4", "empty folder": tmp_path / "empty",
              "only a broken file": random_bytes(tmp_path / "broken.mp4", 2000)}
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out" / "deeper"
    assert main(["label", str(inputs[what]), "--out", str(out), "--no-progress"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "ERROR" in line]
    assert len(err) == 1, err
    assert {"missing file": "missing.mp4: no such file", "empty folder": "no video files",
            "only a broken file": "broken.mp4: not a readable video"}[what] in err[0]
    assert not (tmp_path / "out").exists()  # nothing can run: nothing is made

"""Exactly once, resumable, never destroying: the job manifest and the rules around it, end to end."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import av
import pytest

from tests.media import write_video
from tests.processes import VIDPIPE, wait_for
from tests.stages.jobs.test_label_job import photo
from vidpipe.stages.jobs.cli import main
from vidpipe.stages.jobs.manifest import MANIFEST_NAME

pytestmark = pytest.mark.timeout(240)

LABEL_KEYS = ("frame", "t", "top5", "names", "scores")  # latency_ms and timings differ run to run


def labels(path: Path) -> list[tuple]:
    return [tuple(json.dumps(r[k]) for k in LABEL_KEYS) for r in map(json.loads, path.read_text().splitlines())]


def frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST_NAME).read_text())


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    d = tmp_path / "videos"
    d.mkdir()
    for i, (n, name) in enumerate(((40, "chelsea"), (60, "coffee"), (50, "astronaut"))):
        write_video(d / f"v{i}.mp4", frames=n, width=160, height=120, fps=25, photo=photo(name))
    return d


def label(*args: str) -> int:
    return main(["label", *args, "--no-progress", "--backend", "cpu", "--batch", "4"])


def assert_same_outputs(a: Path, b: Path, names: list[str]) -> None:
    for name in names:
        assert labels(a / f"{name}.jsonl") == labels(b / f"{name}.jsonl"), name
        seg_a, seg_b = (json.loads((d / f"{name}.segments.json").read_text()) for d in (a, b))
        assert seg_a["segments"] == seg_b["segments"] and seg_a["summary"] == seg_b["summary"]
        assert frames(a / f"{name}.mp4") == frames(b / f"{name}.mp4")


@pytest.mark.slow
def test_resume_after_kill_9_of_the_whole_job_equals_an_uninterrupted_run(videos: Path, tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert label(str(videos), "--out", str(whole)) == 0
    # a slow card, one video at a time, each recorded as it is done (no group commit, which could
    # record them all in one write): the job is mid-way when the first "done" is seen and it is killed
    slow = tmp_path / "slow.yaml"
    slow.write_text("backend:\n  name: cpu\n  max_batch: 1\nruntime:\n  max_open_sources: 1\n"
                    "  manifest_interval_s: 0\n")
    cmd = [*VIDPIPE, "label", str(videos), "--out", str(cut), "--config", str(slow),
           "--no-progress"]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: (cut / MANIFEST_NAME).exists()
                 and any(v["state"] == "done" for v in manifest(cut)["videos"].values()), 60)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, as a power cut would
        proc.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    states = {Path(k).name: v["state"] for k, v in manifest(cut)["videos"].items()}
    done = [n for n, s in states.items() if s == "done"]
    assert done and len(done) < 3
    kept_mtimes = {n: (cut / f"{Path(n).stem}.jsonl").stat().st_mtime_ns for n in done}
    assert label(str(videos), "--out", str(cut), "--resume") == 0
    assert_same_outputs(whole, cut, ["v0", "v1", "v2"])
    assert {n: (cut / f"{Path(n).stem}.jsonl").stat().st_mtime_ns for n in done} == kept_mtimes  # kept, not redone
    assert not list(cut.glob("*.part"))
    assert {v["state"] for v in manifest(cut)["videos"].values()} == {"done"}


def test_resume_keeps_verified_videos_and_says_why_it_redoes_others(
    videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert label(str(videos), "--out", str(out), "--no-video") == 0
    entry = manifest(out)["videos"][str(videos / "v1.mp4")]
    assert entry["state"] == "done" and entry["outputs"].keys() == {"v1.jsonl", "v1.segments.json", "v1.segments.csv",
                                                                    "v1.vtt"}
    assert all(v.startswith("sha256:") for v in entry["outputs"].values())
    write_video(videos / "v1.mp4", frames=30, width=160, height=120, fps=25)  # a changed input
    (out / "v2.segments.csv").write_text("edited by hand\n")  # a modified output
    capsys.readouterr()
    assert label(str(videos), "--out", str(out), "--no-video", "--resume") == 0
    err = capsys.readouterr().err
    assert "v0: done in an earlier run, kept" in err
    assert "v1.mp4: labeling again: input changed" in err
    assert "v2.mp4: labeling again: output v2.segments.csv was modified" in err
    assert len(labels(out / "v1.jsonl")) == 30
    assert label(str(videos), "--out", str(out), "--no-video", "--resume", "--resize", "center-crop") == 0
    assert "labeling again: settings changed (preprocess.resize: 'full' -> 'center-crop')" in capsys.readouterr().err
    assert label(str(videos), "--out", str(out), "--no-video", "--resume", "--resize", "center-crop") == 0
    assert "all 3 videos were done already" in capsys.readouterr().err


def test_outputs_never_land_on_inputs_or_on_files_vidpipe_did_not_create(
    videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (videos / "v0.mp4").read_bytes()
    assert label(str(videos), "--out", str(videos)) == 2
    assert "v0.mp4 would replace the input of the same name: choose another --out" in capsys.readouterr().err
    assert (videos / "v0.mp4").read_bytes() == before and not (videos / MANIFEST_NAME).exists()
    out = tmp_path / "out"
    out.mkdir()
    (out / "v1.jsonl").write_text("the user's own notes\n")
    assert label(str(videos), "--out", str(out), "--no-video") == 1
    err = capsys.readouterr().err
    assert f"{out / 'v1.jsonl'} exists and was not written by vidpipe: not overwriting it" in err
    assert (out / "v1.jsonl").read_text() == "the user's own notes\n"
    assert len(labels(out / "v0.jsonl")) == 40 and len(labels(out / "v2.jsonl")) == 50
    assert label(str(videos), "--out", str(out), "--no-video") == 1  # a rerun replaces its own outputs only


@pytest.mark.extended
def test_an_output_folder_inside_the_input_folder_is_not_labeled_again(videos: Path) -> None:
    out = videos / "results"
    assert label(str(videos), "--out", str(out)) == 0
    assert label(str(videos), "--out", str(videos / "other")) == 0
    assert sorted(p.name for p in (videos / "other").glob("*.jsonl")) == ["v0.jsonl", "v1.jsonl", "v2.jsonl"]


def test_colliding_and_odd_names_each_get_their_own_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    for sub, name in (("a", b"clip.mp4"), ("b", b"clip.mp4"), ("c", b"clip-2.mp4"), ("d", b"Clip.mp4"),
                      ("e", b"bad\xff\xfename.mp4"), ("f", b"new\nline.mp4"), ("g", b"x" * 240 + b".mp4")):
        folder = src / sub
        folder.mkdir(parents=True)
        write_video(Path(os.fsdecode(os.path.join(bytes(folder), name))), frames=8, width=96, height=64)
    out = tmp_path / "out"
    assert label(str(src), "--out", str(out), "--no-video") == 0, capsys.readouterr().err
    names = sorted(p.name.removesuffix(".jsonl") for p in out.glob("*.jsonl"))
    assert len(names) == 7 and len({n.casefold() for n in names}) == 7
    assert {"clip", "clip-2", "clip-2-2", "Clip-3", "bad_xff_xfename", "new_nline"} <= set(names)
    assert all(len(n.encode()) <= 120 and "\n" not in n for n in names)
    assert all(len(labels(out / f"{n}.jsonl")) == 8 for n in names)
    assert label(str(src), "--out", str(out), "--no-video", "--resume") == 0  # the same names again: all kept
    assert sorted(p.name.removesuffix(".jsonl") for p in out.glob("*.jsonl")) == names


def test_bad_output_folders_are_one_line_before_anything_runs(
    videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert label(str(videos), "--out", str(a_file)) == 2
    assert f"output.dir: {a_file} is a file, not a folder" in capsys.readouterr().err
    assert label(str(videos), "--out", str(a_file / "sub")) == 2
    assert "output.dir: cannot create" in capsys.readouterr().err

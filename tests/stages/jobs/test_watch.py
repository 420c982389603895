"""`vidpipe watch`: files join the running graph once they stop growing, exactly once across restarts."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.media import write_video
from tests.processes import VIDPIPE, finish, wait_for, wait_for_child
from vidpipe.stages.jobs.manifest import MANIFEST_NAME

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def start_watch(folder: Path, out: Path, tmp_path: Path) -> subprocess.Popen[str]:
    config = tmp_path / "watch.yaml"
    config.write_text("watch:\n  poll_s: 0.2\n  settle_s: 1.0\n  max_width: 640\n  max_height: 480\n")
    cmd = [*VIDPIPE, "watch", str(folder), "--out", str(out), "--config",
           str(config), "--backend", "sim", "--no-progress"]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)


def done(out: Path) -> dict[str, dict]:
    path = out / MANIFEST_NAME
    if not path.exists():
        return {}
    return {Path(k).name: v for k, v in json.loads(path.read_text())["videos"].items() if v["state"] == "done"}


def state(out: Path, name: str) -> str:
    videos = json.loads((out / MANIFEST_NAME).read_text())["videos"] if (out / MANIFEST_NAME).exists() else {}
    return next((v["state"] for k, v in videos.items() if Path(k).name == name), "")


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def stop(proc: subprocess.Popen[str], code: int = 0) -> str:
    """Ctrl-C: how a watch ends; exit 0, or 1 when some file failed."""
    proc.send_signal(signal.SIGINT)
    err = finish(proc, 60)
    assert proc.returncode == code, err
    return err


def test_files_are_labeled_once_they_stop_growing_and_join_the_running_graph(tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    first = write_video(tmp_path / "first.mkv", frames=40, width=160, height=120).read_bytes()
    proc = start_watch(folder, out, tmp_path)
    try:
        sink = wait_for_child(proc.pid, "sink")
        with (folder / "a.mkv").open("wb") as f:  # a copy in progress: half, a pause, the rest
            f.write(first[: len(first) // 2])
            f.flush()
            time.sleep(0.5)  # shorter than settle_s: the half file must not be taken
            f.write(first[len(first) // 2 :])
        wait_for(lambda: "a.mkv" in done(out), timeout=30)
        assert lines(out / "a.jsonl") == 40
        write_video(folder / "b.mp4", frames=25, width=320, height=240)
        wait_for(lambda: "b.mp4" in done(out), timeout=30)
        assert lines(out / "b.jsonl") == 25
        assert wait_for_child(proc.pid, "sink") == sink  # the same graph: no restart per file
        write_video(folder / "huge.mp4", frames=2, width=800, height=600)  # larger than the slots
        wait_for(lambda: state(out, "huge.mp4") == "failed", timeout=30)
    finally:
        err = stop(proc, code=1) if proc.poll() is None else ""
    assert "huge.mp4: 800x600 frames are larger than watch.max_width x watch.max_height (640x480)" in err
    assert err.count(": labeling") == 2 and "Traceback" not in err


def test_a_restart_keeps_what_was_done_and_labels_a_changed_file_again(tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    write_video(folder / "a.mp4", frames=20, width=160, height=120)
    write_video(folder / "b.mp4", frames=30, width=160, height=120)
    proc = start_watch(folder, out, tmp_path)
    try:
        wait_for(lambda: {"a.mp4", "b.mp4"} <= done(out).keys(), timeout=30)
    finally:
        stop(proc)
    kept = (out / "a.jsonl").stat().st_mtime_ns
    write_video(folder / "b.mp4", frames=12, width=160, height=120)  # b changes while nobody watches
    proc = start_watch(folder, out, tmp_path)
    try:
        wait_for(lambda: lines(out / "b.jsonl") == 12, timeout=30)
        wait_for(lambda: done(out).get("b.mp4", {}).get("frames") == 12, timeout=10)
        assert (out / "a.jsonl").stat().st_mtime_ns == kept
        write_video(folder / "a.mp4", frames=8, width=160, height=120)  # a changes while it is watched
        wait_for(lambda: done(out).get("a.mp4", {}).get("frames") == 8, timeout=30)
    finally:
        err = stop(proc)
    assert "a: done in an earlier run, kept" in err
    assert "b changed since it was labeled: labeling again (input changed" in err
    assert "a changed since it was labeled: labeling again (input changed" in err

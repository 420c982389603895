"""One job per output folder: a second label or watch job on a busy --out stops before writing
anything, in one line naming the first job's pid and host; the first job's outputs are the same
as a run alone."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.media import write_video
from tests.processes import VIDPIPE, finish, wait_for
from tests.stages.jobs.test_label_job import photo
from vidpipe.pipeline.folder_lock import LOCK_NAME

pytestmark = pytest.mark.timeout(180)


def slow_config(tmp_path: Path) -> Path:
    path = tmp_path / "slow.yaml"  # a slow card: the first job is still running when the second starts
    path.write_text("backend:\n  name: cpu\n  max_batch: 1\nruntime:\n  max_open_sources: 1\n")
    return path


def without_latency(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("latency_ms")  # the fields that depend on the machine's timing
        row.pop("timings_ms", None)
    return rows


def holder_pid(out: Path) -> int | None:
    try:
        return json.loads((out / LOCK_NAME).read_text()).get("pid")
    except (OSError, ValueError):
        return None


@pytest.mark.parametrize("second", ["label", pytest.param("watch", marks=pytest.mark.extended)])
def test_a_second_job_on_a_busy_folder_refuses_and_the_first_is_untouched(tmp_path: Path, second: str) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "v0.mp4", frames=150, width=160, height=120, photo=photo("chelsea"))
    write_video(videos / "v1.mp4", frames=150, width=176, height=144, photo=photo("coffee"))
    out, alone = tmp_path / "out", tmp_path / "alone"
    cmd = [*VIDPIPE, "label", str(videos), "--config", str(slow_config(tmp_path)), "--no-progress"]
    first = subprocess.Popen([*cmd, "--out", str(out)], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: holder_pid(out) == first.pid, what="the first job to lock its output folder")
        # the first job's files; not its manifest's `.tmp`, which it renames itself (a group commit)
        before = sorted(p.name for p in out.iterdir() if not p.name.endswith(".tmp"))
        other = subprocess.run([*VIDPIPE, second, str(videos), "--out", str(out)], capture_output=True, text=True,
                               timeout=60)
        assert first.poll() is None, "the first job ended before the second started: make it slower"
        assert other.returncode == 2
        lines = other.stderr.strip().splitlines()
        assert len(lines) == 1, other.stderr
        assert f"is in use by another vidpipe job (pid {first.pid} on host {socket.gethostname()}" in lines[0]
        assert "Traceback" not in other.stderr
        assert set(before) <= {p.name for p in out.iterdir()}  # it removed nothing of the first job's
    finally:
        stderr = finish(first, timeout=120)
    assert first.returncode == 0, stderr
    assert subprocess.run([*cmd, "--out", str(alone)], capture_output=True, timeout=120).returncode == 0
    for name in ("v0", "v1"):
        assert without_latency(out / f"{name}.jsonl") == without_latency(alone / f"{name}.jsonl")
        for suffix in (".segments.csv", ".vtt"):
            assert (out / f"{name}{suffix}").read_bytes() == (alone / f"{name}{suffix}").read_bytes()
    summary = json.loads((out / "summary.json").read_text())
    assert [v["status"] for v in summary["videos"]] == ["done", "done"]

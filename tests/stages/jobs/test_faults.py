"""Faults at any moment: Ctrl-C during start-up, a main process killed outright, a stopped stage,
shared memory left by a dead job, absurd settings. Each ends in one line and a clean machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import pytest

from tests.media import write_video
from tests.processes import UNSHARE_MOUNT, VIDPIPE, children, finish, state, wait_for, wait_for_child
from vidpipe.stages.jobs.cli import main

pytestmark = pytest.mark.timeout(180)


def slow_config(tmp_path: Path, extra: str = "") -> Path:
    """A slow card (20 ms per image) so the job is still running when a test acts on it."""
    path = tmp_path / "slow.yaml"
    path.write_text("backend:\n  name: sim\n  max_batch: 1\n  sim:\n    per_image_ms: 20\n" + extra)
    return path


@pytest.fixture
def long_video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "long.mp4", frames=300, width=160, height=120)


# From 0.15 s on, vidpipe's own code runs; a Ctrl-C in the interpreter's first ~0.1 s, before
# any of it is imported, is Python's own KeyboardInterrupt (not catchable from a program).
@pytest.mark.parametrize("delay_s", [0.15, 0.3, 0.8])
def test_ctrl_c_during_start_up_is_exit_130_without_a_traceback(
    long_video: Path, tmp_path: Path, delay_s: float
) -> None:
    cmd = [*VIDPIPE, "label", str(long_video), "--out", str(tmp_path / "out"), "--config", str(slow_config(tmp_path)),
           "--no-progress"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(delay_s)  # the moment of the Ctrl-C is what this test varies
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal sends it: to the whole process group
    err = finish(proc, 60)
    # 130, or death by SIGINT, which a shell also reports as 130 (rarely seen, when the signal
    # lands while the interpreter itself shuts down)
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not list(Path("/dev/shm").glob(f"vidpipe_{proc.pid}_*"))


@pytest.mark.slow
def test_children_exit_by_themselves_when_the_main_process_is_killed(long_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [*VIDPIPE, "label", str(long_video), "--out", str(out), "--config", str(slow_config(tmp_path)),
           "--no-progress"]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    try:
        wait_for_child(proc.pid, "sink")
        kids = children(proc.pid)
        assert len(kids) >= 4
        proc.kill()  # the main process only
        proc.wait(10)
        deadline = time.monotonic() + 5.0
        while any(Path(f"/proc/{c}").exists() and state(c) not in ("Z", "gone") for c in kids):
            assert time.monotonic() < deadline, f"children still running 5 s after the main process died: {kids}"
            time.sleep(0.1)
    finally:
        proc.kill()


@pytest.mark.slow
def test_a_stopped_stage_is_named_as_stuck_and_the_file_job_fails_cleanly(long_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = slow_config(tmp_path, "runtime:\n  stall_timeout_s: 2\n")
    cmd = [*VIDPIPE, "label", str(long_video), "--out", str(out), "--config", str(config), "--no-progress",
           "--workers", "1"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        victim = wait_for_child(proc.pid, "preprocess")
        wait_for(lambda: (out / "long.jsonl.part").exists())
        os.kill(victim, signal.SIGSTOP)
        err = finish(proc, 60)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert "stage preprocess-0 is stuck: no sign of life for" in err and "Traceback" not in err
    assert not children(proc.pid) and not Path(f"/proc/{victim}").exists()
    assert not list(Path("/dev/shm").glob(f"vidpipe_{proc.pid}_*"))


def test_segments_of_dead_jobs_are_reclaimed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = SharedMemory(create=True, size=4096, name=f"vidpipe_{int(dead.stdout)}_frames_test")
    alive = SharedMemory(create=True, size=4096, name=f"vidpipe_{os.getpid()}_frames_test")
    try:
        orphan.close()
        video = write_video(tmp_path / "a.mp4", frames=3)
        assert main(["label", str(video), "--out", str(tmp_path / "out"), "--backend", "sim", "--no-progress"]) == 0
        assert not Path(f"/dev/shm/{orphan.name}").exists()
        assert Path(f"/dev/shm/{alive.name}").exists()
    finally:
        alive.close()
        alive.unlink()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "100000"], "preprocess.workers: must be auto (one per core) or 1.."),
        (["--batch", "-1"], "backend.max_batch: must be auto (by the job) or 1..1024"),
        (["--batch-timeout-ms", "-1"], "backend.batch_timeout_ms: must be 0..10000"),
    ],
)
def test_absurd_settings_are_refused_before_any_process_starts(
    tmp_path: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    video = write_video(tmp_path / "a.mp4", frames=3)
    assert main(["label", str(video), "--out", str(tmp_path / "out"), "--no-progress", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_bad_encoder_preset_in_a_config_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "job.yaml"
    config.write_text("output:\n  video_preset: superslow\n  video_crf: 70\n")
    video = write_video(tmp_path / "a.mp4", frames=3)
    assert main(["label", str(video), "--config", str(config), "--no-progress"]) == 2
    assert f"{config}: output.video_preset: must be one of ultrafast" in capsys.readouterr().err


def test_a_full_disk_fails_the_video_that_hit_it_and_keeps_the_others(tmp_path: Path) -> None:
    """The output folder is a 256 KiB tmpfs in a private mount namespace (unshare): the small
    video's outputs fit, the big one's do not."""
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "a_small.mp4", frames=20, width=96, height=64)
    write_video(src / "z_big.mp4", frames=2500, width=96, height=64)
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "one.yaml").write_text("runtime:\n  max_open_sources: 1\n")  # a_small first, then z_big
    listing = tmp_path / "listing.txt"  # what the tmpfs held, seen from inside its namespace
    script = (
        'mount -t tmpfs -o size=256k tmpfs "$OUT" || exit 99; "$@"; code=$?; '
        'ls -1 "$OUT" > "$LISTING"; wc -l < "$OUT/a_small.jsonl" >> "$LISTING"; exit $code'
    )
    vidpipe = [*VIDPIPE, "label", str(src), "--out", str(out), "--backend", "sim", "--batch", "32", "--no-video",
               "--no-progress", "--config", str(tmp_path / "one.yaml")]
    env = {**os.environ, "OUT": str(out), "LISTING": str(listing)}
    proc = subprocess.run([*UNSHARE_MOUNT, "sh", "-c", script, "sh", *vidpipe], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "No space left on device" in ln]
    assert lines and "z_big" in lines[0] and "Traceback" not in proc.stderr
    files = listing.read_text().split()
    assert "a_small.jsonl" in files and files[-1] == "20"  # the small video is complete
    assert not [name for name in files if name.endswith(".part")]


def test_a_busy_or_impossible_live_port_is_one_line_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    video = write_video(tmp_path / "a.mp4", frames=3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["live", str(video), "--out", str(tmp_path / "out"), "--port", str(port), "--backend", "sim"]) == 2
    err = capsys.readouterr().err
    assert f"live.http_port: cannot listen on 127.0.0.1:{port} (Address already in use)" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["live", str(video), "--port", "70000", "--backend", "sim"]) == 2
    assert "live.http_port: must be 0..65535" in capsys.readouterr().err

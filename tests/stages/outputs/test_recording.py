"""Live recordings: segments by stream time, named by their start, playable after kill -9, tagged
and held while written (for retention)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media import write_video
from tests.processes import UNSHARE_MOUNT, VIDPIPE, wait_for
from vidpipe.pipeline.config import replace_path
from vidpipe.stages.config import JobConfig, OutputSettings, live_checks
from vidpipe.stages.live_files import Entry, segments
from vidpipe.stages.outputs.recording import SegmentedRecording
from vidpipe.stages.outputs.retention import in_use, made_by_vidpipe


def frame_times(path: Path) -> list[float]:
    """Every decodable frame's time; a file cut inside a fragment ends where its data ends."""
    times: list[float] = []
    with av.open(str(path)) as c, contextlib.suppress(av.error.InvalidDataError):
        times.extend(float(f.time) for f in c.decode(video=0))
    return times


def test_a_recording_is_cut_into_segments_by_stream_time_and_keeps_every_frame(tmp_path: Path) -> None:
    rec = SegmentedRecording(tmp_path, "cam", (96, 64), OutputSettings(video_preset="ultrafast"), segment_s=10.0)
    t0 = 1_796_000_000.0  # capture clock (epoch): 2026-11-30T...Z
    for i in range(50):  # 25 s at 2 fps: segments start at 0, 10 and 20 s
        rec.write(np.full((64, 96, 3), i * 5, np.uint8), i * 0.5, t0 + i * 0.5)
    rec.close()
    stamps = [time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t0 + s)) for s in (0, 10, 20)]
    assert [p.name for p in rec.files] == [f"cam.{stamp}.mp4" for stamp in stamps]  # their first frame's capture
    counts = [len(frame_times(p)) for p in rec.files]
    assert counts == [20, 20, 10]
    assert all(frame_times(p)[:2] == [0.0, 0.5] for p in rec.files)  # each segment starts at its first frame


def test_a_second_recording_in_the_same_second_gets_its_own_name(tmp_path: Path) -> None:
    names = []
    for _ in range(2):
        rec = SegmentedRecording(tmp_path, "cam", (96, 64), OutputSettings(video_preset="ultrafast"), segment_s=0)
        rec.write(np.zeros((64, 96, 3), np.uint8), 0.0, 1_796_000_000.0)
        rec.close()
        names += rec.files
    assert [p.name for p in names] == ["cam.20261130T005320Z.mp4", "cam.20261130T005320Z-2.mp4"]
    assert all(p.exists() for p in names)


def test_a_recording_plays_after_the_whole_job_is_killed(tmp_path: Path) -> None:
    video = write_video(tmp_path / "loop.mp4", frames=60, width=160, height=120, fps=20)
    config = tmp_path / "live.yaml"
    config.write_text(f"backend:\n  name: sim\nlive:\n  record: true\n  http: false\n  jsonl: true\n"
                      f"  sources:\n    - uri: {video}\n      loop: true\n      name: loop\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([*VIDPIPE, "live", "--config", str(config), "--out",
                             str(out)], stderr=subprocess.DEVNULL, start_new_session=True)
    def labeled() -> int:
        return sum(len(p.read_text().splitlines()) for p in segments(out, "loop"))

    try:
        wait_for(lambda: len(list(out.glob("loop.*.mp4"))) == 1 and labeled() > 80, timeout=60)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole job at once, as a power cut would
        proc.wait(10)
    times = frame_times(next(out.glob("loop.*.mp4")))
    # everything up to the last complete fragment (about a second, plus the encoder's delay)
    assert len(times) >= labeled() - 3 * 20 and times == sorted(times)
    assert not list(out.glob("*.part"))


def test_a_segment_shorter_than_ten_seconds_is_refused_naming_the_key() -> None:
    def refused(seconds: float) -> list[str]:
        live = replace_path(JobConfig(job="live"), "live.record_segment_s", seconds).live
        return [f"{key}: {message}" for ok, key, message in live_checks(live) if not ok]

    assert refused(5.0) == ["live.record_segment_s: must be 0 (one file per run) or >= 10 seconds"]
    assert refused(0.0) == [] and refused(600.0) == []
    keep_a_minute = replace_path(JobConfig(job="live"), "live.record_keep_s", 60.0).live  # segments of an hour
    assert [key for ok, key, _ in live_checks(keep_a_minute) if not ok] == ["live.record_keep_s"]


def test_a_recording_is_tagged_held_while_written_and_each_new_file_is_announced(tmp_path: Path) -> None:
    started: list[Path] = []
    rec = SegmentedRecording(tmp_path, "cam", (96, 64), OutputSettings(video_preset="ultrafast"), segment_s=10.0,
                             on_new_file=started.append)
    for i in range(30):  # 15 s at 2 fps: two files
        rec.write(np.zeros((64, 96, 3), np.uint8), i * 0.5, 1_796_000_000.0 + i * 0.5)
        assert in_use(Entry(rec.files[-1], 0, 0))  # retention never deletes the file being written
    assert not in_use(Entry(rec.files[0], 0, 0))  # the first one is done
    rec.close()
    assert started == rec.files and len(started) == 2
    assert all(made_by_vidpipe(Entry(p, p.stat().st_size, 0)) and not in_use(Entry(p, 0, 0)) for p in started)


@pytest.mark.extended
def test_a_full_disk_pauses_a_live_streams_files_until_there_is_room_again(tmp_path: Path) -> None:
    """OUT is a 400 KiB tmpfs in a private mount namespace: the recording fills it, the stream
    says so in one line and keeps labeling; once the recordings are deleted its files resume."""
    video = write_video(tmp_path / "loop.mp4", frames=60, width=320, height=240, fps=20)
    config = tmp_path / "live.yaml"
    config.write_text(f"backend:\n  name: sim\nlive:\n  record: true\n  http: false\n  output_retry_s: 1\n"
                      f"  sources:\n    - uri: {video}\n      loop: true\n      name: loop\n")  # at 20 fps
    out, log, saved = tmp_path / "out", tmp_path / "live.log", tmp_path / "saved.jsonl"
    out.mkdir()
    script = (  # every wait is bounded: the job is stopped (SIGINT) after 90 s whatever happens
        'mount -t tmpfs -o size=400k tmpfs "$OUT" || exit 99; timeout -s INT 90 "$@" 2> "$LOG" & pid=$!; '
        'wait_for() { for i in $(seq 600); do grep -q "$1" "$LOG" && return; sleep 0.1; done; }; '
        'wait_for "No space left on device"; rm -f "$OUT"/loop.*.mp4; '
        'cat "$OUT"/loop.2*.jsonl | wc -l > "$SAVED.before"; '
        'wait_for "writing outputs again"; sleep 1; '
        'kill -INT $pid; wait $pid; code=$?; cat "$OUT"/loop.2*.jsonl > "$SAVED"; exit $code'
    )
    vidpipe = [*VIDPIPE, "live", "--config", str(config), "--out", str(out)]
    env = {**os.environ, "OUT": str(out), "LOG": str(log), "SAVED": str(saved)}
    proc = subprocess.run([*UNSHARE_MOUNT, "sh", "-c", script, "sh", *vidpipe], env=env, timeout=120,
                          capture_output=True, text=True)
    text = log.read_text()
    assert proc.returncode == 1, text[-3000:]  # drained at Ctrl-C; 1: a stream had a problem during the run
    assert "loop.mp4: cannot write" in text and "No space left on device" in text and "Traceback" not in text
    assert "loop: writing outputs again (after: " in text
    assert text.count("loop: recording to ") == 2  # the first file, and a new one once there was room
    before = int(Path(f"{saved}.before").read_text())
    assert len(saved.read_text().splitlines()) > before  # results written again after the pause

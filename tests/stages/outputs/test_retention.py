"""Retention of what live runs write: the decision on fake files and a fake clock, one pass over a
real folder (a user's own files survive, a file being written is never deleted), and a simulated
week: a real live job on `sim` trims a folder holding nine days of segments, clips and events."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.media import write_video
from vidpipe.stages.live_files import Entry, scan, segments, utc_stamp
from vidpipe.stages.outputs import retention
from vidpipe.stages.outputs.live_records import open_append
from vidpipe.stages.outputs.retention import (
    CLIP_TAG,
    RECORDING_TAG,
    Retention,
    in_use,
    made_by_vidpipe,
    plan,
    sweep,
)
from vidpipe.stages.outputs.writers import H264Writer

DAY = 86400.0
NOW = 1_800_000_000.0


def entry(name: str, age_s: float, size: int = 100) -> Entry:
    return Entry(Path("/out") / name, size, NOW - age_s)


def names(deletions: list[retention.Deletion]) -> list[tuple[str, str]]:
    return [(d.entry.path.name, d.why) for d in deletions]


def test_files_older_than_keep_s_go_oldest_first_and_zero_keeps_all() -> None:
    files = [entry("b", 3 * DAY), entry("a", 9 * DAY), entry("c", 1 * DAY), entry("d", 8 * DAY)]
    assert names(plan(files, NOW, 7 * DAY, 0)) == [("a", "age"), ("d", "age")]
    assert plan(files, NOW, 0, 0) == [] and plan(files, NOW, 10 * DAY, 0) == []
    assert names(plan(files, NOW + 5 * DAY, 7 * DAY, 0)) == [("a", "age"), ("d", "age"), ("b", "age")]


def test_over_max_bytes_the_oldest_go_until_the_rest_fits() -> None:
    files = [entry("new", 1, 400), entry("old", 300, 300), entry("mid", 200, 200), entry("older", 400, 100)]
    assert names(plan(files, NOW, 0, 1000)) == []  # exactly the limit fits
    assert names(plan(files, NOW, 0, 999)) == [("older", "size")]
    assert names(plan(files, NOW, 0, 600)) == [("older", "size"), ("old", "size")]
    assert names(plan(files, NOW, 0, 1)) == [("older", "size"), ("old", "size"), ("mid", "size"), ("new", "size")]
    # both limits: the old ones for their age, then for the size
    assert names(plan(files, NOW, 350, 600)) == [("older", "age"), ("old", "size")]


def test_a_busy_file_is_kept_and_counted_one_not_ours_is_kept_and_not_counted() -> None:
    files = [entry("writing", 500, 300), entry("users", 400, 300), entry("a", 300, 300), entry("b", 1, 300)]
    busy, theirs = (lambda e: e.path.name == "writing"), (lambda e: e.path.name != "users")
    # 1200 bytes, 300 of them not vidpipe's: 900 counted; the busy file cannot go, so "a" does
    assert names(plan(files, NOW, 0, 700, ours=theirs, busy=busy)) == [("a", "size")]
    assert names(plan(files, NOW, 100, 0, ours=theirs, busy=busy)) == [("a", "age")]
    asked: list[str] = []
    plan(files, NOW, 350, 0, ours=lambda e: asked.append(e.path.name) or True)
    assert asked == ["writing", "users"]  # only about files that would go: no opening every file


def _video(path: Path, tag: str, size: int = 0) -> Path:
    with H264Writer(path, 64, 48, 10, preset="ultrafast", metadata={"comment": tag}) as w:
        w.write(np.zeros((48, 64, 3), np.uint8))
    if size:
        os.truncate(path, size)
    return path


def _jsonl(path: Path, size: int = 0) -> Path:
    line = json.dumps({"run": "20260101T000000Z-aaaaaa", "stream": "cam", "frame": 0}) + "\n"
    path.write_text(line * max(1, size // len(line)))
    return path


def _age(path: Path, now: float, age_s: float) -> Path:
    os.utime(path, (now - age_s, now - age_s))
    return path


def _users_files(out: Path, now: float) -> dict[Path, bytes]:
    """What a user keeps in the output folder, all old: none of it may go."""
    (out / "tls").mkdir(parents=True, exist_ok=True)
    (out / "clips").mkdir(exist_ok=True)
    (out / "snapshots").mkdir(exist_ok=True)
    for name in ("notes.txt", "users.json", "tls/cert.pem", "clips/notes.txt", "cam.jsonl", "events.jsonl",
                 "snapshots/mine.jpg"):
        (out / name).write_text(f"{name}: the user's own\n")
    write_video(out / "cam1.mine.mp4", frames=2, width=64, height=48)
    write_video(out / "cam.20200101T000000Z.mp4", frames=2, width=64, height=48)  # vidpipe's name, not its file
    (out / "cam.20200101T000000Z.jsonl").write_text("time,label\n1,cat\n")
    theirs = [p for p in out.rglob("*") if p.is_file()]
    for p in theirs:
        _age(p, now, 400 * DAY)
    return {p: p.read_bytes() for p in theirs}


def test_a_pass_deletes_only_vidpipes_old_files_and_never_one_being_written(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    now = time.time()
    users = _users_files(tmp_path, now)
    (tmp_path / "door.20250101T000000Z.jsonl").touch()  # a run killed before its first line
    (tmp_path / "timeline").mkdir()
    (tmp_path / "snapshots" / "cam.20250101T000000Z.jpg").write_bytes(b"\xff\xd8\xff\xe0 a JPEG")
    old = [_age(p, now, 30 * DAY) for p in (
        _video(tmp_path / "cam.20250101T000000Z.mp4", RECORDING_TAG),
        _video(tmp_path / "clips" / "cam_tabby_20250101-010000.mp4", CLIP_TAG),
        _jsonl(tmp_path / "cam.20250101T000000Z.jsonl"), _jsonl(tmp_path / "events.20250101T000000Z-2.jsonl"),
        tmp_path / "door.20250101T000000Z.jsonl", _jsonl(tmp_path / "timeline" / "cam.20250101T000000Z.jsonl"),
        tmp_path / "snapshots" / "cam.20250101T000000Z.jpg")]
    writing = tmp_path / "cam.20250102T000000Z.jsonl"
    held = open_append(writing)  # a stream's segment: its last line a month old, still open
    held.write(json.dumps({"run": "r"}) + "\n")
    held.flush()
    _age(writing, now, 30 * DAY)
    assert {e.path for e in scan(tmp_path)} == {*old, writing, tmp_path / "cam.20200101T000000Z.mp4",
                                                tmp_path / "cam.20200101T000000Z.jsonl"}
    assert all(made_by_vidpipe(e) for e in scan(tmp_path) if e.path in old)
    assert in_use(Entry(writing, 0, 0)) and not in_use(Entry(old[0], 0, 0))
    with caplog.at_level(logging.INFO, "vidpipe.stages.outputs.retention"):
        done = sweep(tmp_path, now, 7 * DAY, 0)
        assert sweep(tmp_path, now, 7 * DAY, 0) == []  # a pass that deletes nothing says nothing
    assert sorted(d.entry.path for d in done) == sorted(old) and not any(p.exists() for p in old)
    assert writing.exists() and all(p.read_bytes() == data for p, data in users.items())
    (line,) = [r.getMessage() for r in caplog.records]
    assert re.fullmatch(rf"retention: deleted 7 files \(0\.0 MB\) in {tmp_path}: 7 last written over 7 d ago "
                        r"\(live.record_keep_s\)", line), line
    held.close()  # no longer written: its turn
    assert [d.entry.path for d in sweep(tmp_path, now, 7 * DAY, 0)] == [writing]
    assert {e.path for e in scan(tmp_path)} == {tmp_path / "cam.20200101T000000Z.mp4",
                                                tmp_path / "cam.20200101T000000Z.jsonl"}


def test_the_runner_passes_on_a_new_file_and_at_most_every_period(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    passes: list[float] = []
    monkeypatch.setattr(retention, "sweep", lambda folder, now, keep_s, max_bytes: passes.append(now) or [])
    runner = Retention(tmp_path, 60.0, 0, period_s=3600.0, clock=lambda: 42.0)
    for _ in range(3):
        runner.poll()
        runner.close()  # waits for the pass under way
    assert passes == [42.0]  # the first poll, then nothing due
    runner.ask(tmp_path / "cam.20260101T000000Z.jsonl")
    runner.poll()
    runner.poll()
    runner.close()
    assert passes == [42.0, 42.0]


# -- a simulated week --------------------------------------------------------------------------

OLD_SIZE = 100_000  # bytes of each old file: the live run's own few KB cannot change the count
KEEP_S = 7 * DAY
MAX_BYTES = 3_050_000  # (the week holds 56 old files: 5.6 MB)


def _history(out: Path, now: float) -> dict[float, list[Path]]:
    """Nine days of a 12-hour segment rhythm, by age: stream cam's JSONL and recording, the events,
    a clip; and a camera removed ten days ago ("door")."""
    history: dict[float, list[Path]] = {}
    for k in range(1, 19):
        age = k * 12 * 3600 - 3600  # last written an hour before the next segment started
        stamp = utc_stamp(now - age - 11 * 3600)
        local = time.strftime("%Y%m%d-%H%M%S", time.localtime(now - age - 60))
        history[age] = [_age(p, now, age) for p in (
            _jsonl(out / f"cam.{stamp}.jsonl", OLD_SIZE), _video(out / f"cam.{stamp}.mp4", RECORDING_TAG, OLD_SIZE),
            _jsonl(out / f"events.{stamp}.jsonl", OLD_SIZE),
            _video(out / "clips" / f"cam_tabby_{local}.mp4", CLIP_TAG, OLD_SIZE))]
    door = [_jsonl(out / f"door.{utc_stamp(now - 11 * DAY)}.jsonl"), _video(out / "door.20250101T000000Z.mp4",
                                                                         RECORDING_TAG)]
    history[10 * DAY] = [_age(p, now, 10 * DAY) for p in door]
    return history


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_simulated_week_leaves_what_retention_allows_and_the_users_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    now = time.time()
    users = _users_files(out, now)
    history = _history(out, now)
    video = write_video(tmp_path / "cam.mp4", frames=30, width=160, height=120, fps=20)
    config = tmp_path / "live.yaml"
    config.write_text(f"backend:\n  name: sim\nlive:\n  record: true\n  http: false\n  status_interval_s: 0\n"
                      f"  record_keep_s: {KEEP_S}\n  max_disk_gb: {MAX_BYTES / 1e9}\n"
                      f"  sources:\n    - uri: {video}\n      name: cam\n")
    run = subprocess.run([sys.executable, "-m", "vidpipe", "live", "--config", str(config), "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]

    old = [p for files in history.values() for p in files]
    gone_for_age = [p for age, files in history.items() if age > KEEP_S for p in files]
    week = sorted((p for age, files in history.items() if age <= KEEP_S for p in files),
                  key=lambda p: (-next(a for a, f in history.items() if p in f), p))  # oldest first
    # the week's 56 files (5.6 MB) fit in 3.05 MB once the oldest 26 are gone (the run's own files are small)
    assert not any(p.exists() for p in gone_for_age) and len(week) == 56
    assert [p.exists() for p in week] == [False] * 26 + [True] * 30
    assert all(p.read_bytes() == data for p, data in users.items())  # the user's own: all there, untouched
    # this run's files: a new JSONL segment, a recording, an events segment (all still there)
    (jsonl,) = [p for p in segments(out, "cam") if p not in old and p not in users]
    rows = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert len(rows) >= 10 and len({r["run"] for r in rows}) == 1
    assert len([p for p in segments(out, "cam", ".mp4") if p not in old and p not in users]) == 1
    assert len([p for p in segments(out, "events") if p not in old and p not in users]) == 1
    (line,) = [x for x in run.stderr.splitlines() if "retention: deleted" in x]  # one pass deleted
    assert re.search(r"deleted 44 files \(4\.\d MB\) in .*: 18 last written over 7 d ago \(live.record_keep_s\), "
                     r"26 to stay under 0.00305 GB \(live.max_disk_gb\)$", line), line

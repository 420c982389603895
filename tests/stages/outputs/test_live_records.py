"""Live JSONL lines (run id, wall clock, stream) in segments (one per run and per segment_s of wall
time), the recording's clock and the variable-frame-rate H.264 mode."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media import pattern_frame
from vidpipe.stages.live_files import segments
from vidpipe.stages.outputs.live_records import (
    LiveJsonl,
    RecordClock,
    RunInfo,
    build_info,
    new_run_id,
)
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.writers import H264Writer


def label(i: int) -> FrameLabel:
    return FrameLabel("cam1", i, i / 15, (281, 282, 285, 0, 1), ("tabby", "tiger cat", "Egyptian cat", "a", "b"),
                      (0.7, 0.2, 0.05, 0.01, 0.01), 41.0, {"preprocess": 3.0})


def test_run_ids_are_unique_and_sortable_by_start_time() -> None:
    ids = [new_run_id() for _ in range(50)]
    assert len(set(ids)) == 50 and all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", i) for i in ids)
    assert RunInfo().run_id != RunInfo().run_id
    info = build_info("sim")
    assert info["backend"] == "sim" and info["version"] and info["python"].count(".") == 2 and info["pynq"]


def rows_of(folder: Path, stream: str = "cam1") -> list[dict]:
    return [json.loads(x) for p in segments(folder, stream) for x in p.read_text().splitlines()]


def test_lines_carry_run_stream_and_wall_clock_and_each_run_has_its_segment(tmp_path: Path) -> None:
    t0 = 1767268800.0  # 2026-01-01T12:00:00Z
    for run, start in (("run-a", t0), ("run-b", t0 + 60)):
        out = LiveJsonl(tmp_path, "cam1", run, segment_s=3600)
        for i in range(3):
            out.write(label(i), start + i / 15)
        out.close()
    assert [p.name for p in segments(tmp_path, "cam1")] == ["cam1.20260101T120000Z.jsonl",
                                                           "cam1.20260101T120100Z.jsonl"]
    rows = rows_of(tmp_path)
    assert [r["run"] for r in rows] == ["run-a"] * 3 + ["run-b"] * 3
    first = rows[0]
    assert list(first)[:6] == ["run", "stream", "frame", "time", "time_iso", "t"]
    assert first["stream"] == "cam1" and first["frame"] == 0 and first["names"][0] == "tabby"
    assert first["time"] == t0 and first["time_iso"] == "2026-01-01T12:00:00.000+00:00"
    assert datetime.fromisoformat(rows[1]["time_iso"]).timestamp() == pytest.approx(rows[1]["time"], abs=1e-3)
    assert len({(r["run"], r["frame"]) for r in rows}) == 6  # (run, frame) is the key
    assert all(set(r) == set(first) for r in rows)  # one table: every line has the same columns


def test_a_new_segment_every_segment_s_of_wall_time_and_none_with_zero(tmp_path: Path) -> None:
    t0 = 1767268800.0
    started: list[Path] = []
    out = LiveJsonl(tmp_path, "cam1", "run-a", segment_s=10, on_new=started.append)
    for i in range(25):  # one line a second: segments start at 0, 10 and 20 s
        out.write(label(i), t0 + i)
    out.close()
    assert segments(tmp_path, "cam1") == started and [p.name for p in started] == [
        "cam1.20260101T120000Z.jsonl", "cam1.20260101T120010Z.jsonl", "cam1.20260101T120020Z.jsonl"]
    assert [len(p.read_text().splitlines()) for p in started] == [10, 10, 5]
    assert [r["frame"] for r in rows_of(tmp_path)] == list(range(25))  # in name order: one table
    (tmp_path / "one").mkdir()
    whole = LiveJsonl(tmp_path / "one", "cam1", "run-b", segment_s=0)
    for i in range(25):
        whole.write(label(i), t0 + 3600 * i)
    whole.close()
    assert len(segments(tmp_path / "one", "cam1")) == 1
    assert segments(tmp_path, "cam") == [] and segments(tmp_path, "cam1.x") == []  # other streams' names


def test_a_torn_last_line_of_a_killed_run_is_cut_before_a_segment_is_reopened(tmp_path: Path) -> None:
    out = LiveJsonl(tmp_path, "cam1", "run-a")
    out.write(label(0), 1.0)
    out.close()
    (path,) = segments(tmp_path, "cam1")
    with path.open("a") as f:
        f.write('{"run":"run-a","stream":"cam1","fra')  # killed mid-line
    out = LiveJsonl(tmp_path, "cam1", "run-b")  # a run starting within the same second: the same name
    out.write(label(0), 1.5)
    out.close()
    rows = [json.loads(x) for x in path.read_text().splitlines()]  # every line parses
    assert [r["run"] for r in rows] == ["run-a", "run-b"] and segments(tmp_path, "cam1") == [path]
    path.write_text('{"torn')  # nothing complete at all
    out = LiveJsonl(tmp_path, "cam1", "run-c")
    out.write(label(0), 1.0)
    out.close()
    assert [json.loads(x)["run"] for x in path.read_text().splitlines()] == ["run-c"]


def test_record_clock_follows_the_source_and_bridges_a_restart() -> None:
    clock = RecordClock()
    assert [clock(p, 100 + p) for p in (0.0, 0.5, 1.0)] == [0.0, 0.5, 1.0]
    # a restarted source process numbers from 0 again, 2 s of wall clock later
    assert clock(0.0, 103.0) == pytest.approx(3.0)
    assert clock(0.25, 103.25) == pytest.approx(3.25)


def test_vfr_writer_keeps_each_frames_time(tmp_path: Path) -> None:
    times = [10 + i / 15 for i in range(15)] + [12 + i / 15 for i in range(15)]  # 15 fps, a 1 s gap
    with H264Writer(tmp_path / "v.mp4", 161, 121, 30, preset="ultrafast", vfr=True) as w:
        for i, t in enumerate(times):
            w.write(pattern_frame(i, 161, 121), t)
        with pytest.raises(ValueError, match="pts_s"):
            w.write(pattern_frame(0, 161, 121))
    with av.open(str(tmp_path / "v.mp4")) as c:
        pts = [float(f.time) for f in c.decode(video=0)]
        duration = (c.duration or 0) / 1e6
    assert len(pts) == 30 and pts[0] == 0.0
    assert np.allclose(pts, np.array(times) - 10, atol=1e-4)
    assert duration == pytest.approx(times[-1] - 10 + 1 / 30, abs=0.01)  # the last frame lasts 1/fps

"""What a live run writes per frame and how it names itself: the run id, the JSONL segments
OUTPUT/STREAM.START.jsonl, and the recording's clock.

Every `vidpipe live` run has a run id (`20260101T120000Z-1a2b3c`: UTC start time, then 6 random hex
digits), logged at start, in /status.json and /metrics (vidpipe_build_info) and in every JSONL line
and event. A stream's lines go to segments as its recordings do: OUTPUT/STREAM.START.jsonl, START
the UTC time of the segment's first line (`cam1.20260101T120000Z.jsonl`), a new segment every
`live.record_segment_s` of wall time (0: one per run) and with every run, so retention
(stages.outputs.retention) deletes old lines a segment at a time. Every line says which run it
belongs to: `frame` starts at 0 in each run, `(run, frame)` is the key, and the segments of a
stream, in name order, are one table (segments(); `cat cam1.2*.jsonl`). A line:

    {"run": "20260101T120000Z-1a2b3c", "stream": "cam1", "frame": 310, "time": 1767268812.402,
     "time_iso": "2026-01-01T12:00:12.402+00:00", "t": 12.4, "top5": [...], "names": [...],
     "scores": [...], "latency_ms": 41.2, "timings_ms": {"preprocess": 3.1, ...}}

`time`/`time_iso` are the wall clock (epoch seconds; ISO 8601, UTC) when the frame was captured;
`t` is the stream's own clock (file position, or seconds since the stream started). Lines are
appended whole (one write each); a segment reopened (a run that starts within the second the
last one's segment started) first loses a last line torn by a killed run, so every line parses.
Label events are segmented the same way: OUTPUT/events.START.jsonl (stages.outputs.senders).
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from vidpipe.pipeline.machine import package_version
from vidpipe.stages.live_files import utc_stamp
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.retention import hold

log = logging.getLogger(__name__)

TAIL_BYTES = 1 << 16  # a JSONL line is far shorter: a torn line is found in the file's last 64 KiB


def iso(t: float) -> str:
    """Epoch seconds as ISO 8601 in UTC, to the millisecond (rounded, as `round(t, 3)`):
    2026-01-01T12:00:12.402+00:00."""
    return datetime.fromtimestamp(round(t, 3), UTC).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    return f"{utc_stamp()}-{secrets.token_hex(3)}"


def build_info(backend: str) -> dict[str, str]:
    """The labels of vidpipe_build_info."""
    return {"version": package_version("vidpipe"), "backend": backend, "python": sys.version.split()[0],
            "pynq": package_version("pynq")}


@dataclass(frozen=True)
class RunInfo:
    """What the live outputs know about the run: its id, build, and the stage process names."""

    run_id: str = field(default_factory=new_run_id)
    build: dict[str, str] = field(default_factory=dict)
    stages: tuple[str, ...] = ()  # preprocess-0, infer-0... (source:NAME comes with each stream)
    infers: tuple[str, ...] = ()


def open_append(path: Path) -> IO[str]:
    """`path` opened to append whole lines (line buffered), a torn last line removed first; held
    (retention.hold) until closed."""
    try:
        with path.open("rb+") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read()
            end = tail.rfind(b"\n") + 1  # 0: no complete line in the tail
            if tail and end < len(tail) and (end or size <= TAIL_BYTES):
                f.truncate(size - len(tail) + end)
                log.warning("%s: removed a torn last line (%d bytes) left by a run that was killed",
                            path, len(tail) - end)
    except FileNotFoundError:
        pass
    lines = path.open("a", encoding="utf-8", buffering=1)
    hold(lines.fileno())
    return lines


class SegmentedJsonl:
    """FOLDER/NAME.START.jsonl: whole lines appended, a new segment at the first line `segment_s`
    (0: never) after the segment's first; `on_new(path)` hears of each new segment."""

    def __init__(self, folder: Path, name: str, segment_s: float,
                 on_new: Callable[[Path], None] | None = None) -> None:
        self.folder, self.name, self.segment_s, self.on_new = folder, name, segment_s, on_new
        self.path: Path | None = None  # the segment being written
        self._file: IO[str] | None = None
        self._start = 0.0

    def write(self, line: str, t: float) -> None:
        """`line` (with its newline), whose time (epoch seconds) is `t`."""
        if self._file is None or (self.segment_s and t - self._start >= self.segment_s):
            self.close()
            self.path, self._start = self.folder / f"{self.name}.{utc_stamp(t)}.jsonl", t
            self._file = open_append(self.path)
            if self.on_new is not None:
                self.on_new(self.path)
        self._file.write(line)

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


class LiveJsonl:
    """The JSONL segments of one stream; see the module docstring."""

    def __init__(self, folder: Path, stream: str, run_id: str, segment_s: float = 0.0,
                 on_new: Callable[[Path], None] | None = None) -> None:
        self.stream, self.run_id = stream, run_id
        self.segments = SegmentedJsonl(folder, stream, segment_s, on_new)

    def write(self, label: FrameLabel, t_capture: float) -> None:
        data: dict[str, Any] = label.to_json()
        line = {"run": self.run_id, "stream": self.stream, "frame": data.pop("frame"),
                "time": round(t_capture, 3), "time_iso": iso(t_capture), **data}
        self.segments.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n", t_capture)

    def close(self) -> None:
        self.segments.close()


class RecordClock:
    """Presentation times of a live recording: the source's own clock (FrameRef.pts_s: the capture
    clock of a camera, the media time of a file), so a 15 fps camera plays at 15 fps. Where that
    clock goes backwards (a restarted source process starts again at 0), the recording goes on
    from its last time plus the wall-clock gap between the two captures."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._last: tuple[float, float] | None = None  # (pts_s, t_capture) of the last frame

    def __call__(self, pts_s: float, t_capture: float) -> float:
        if self._last is not None and pts_s <= self._last[0]:
            last_pts, last_t = self._last
            self._offset = last_pts + self._offset + max(0.0, t_capture - last_t) - pts_s
        self._last = (pts_s, t_capture)
        return pts_s + self._offset

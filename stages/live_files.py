"""What live runs name their files in the output folder, and how to find them: one place that the
writers (stages.outputs), retention and the console (stages.web.console) share.

    OUT/STREAM.START.mp4  OUT/STREAM.START.jsonl  OUT/events.START.jsonl  OUT/clips/STREAM_LABEL_TIME.mp4
    OUT/timeline/STREAM.START.jsonl  OUT/snapshots/STREAM.START.jpg

START: the UTC second (`20261130T144700Z`, utc_stamp()), `-2` for a second file in the same second;
TIME: `20261130-154700`, local time. Nothing else in OUT is a live run's.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# what the live writers name their files, and nothing else
_STAMPED = r".+\.\d{8}T\d{6}Z(?:-\d+)?"
SEGMENT = re.compile(_STAMPED + r"\.(?:mp4|jsonl)")  # in OUT: recordings, JSONL and events segments
CLIP = re.compile(r".+_.+_\d{8}-\d{6}(?:-\d+)?\.mp4")
SNAPSHOT = re.compile(_STAMPED + r"\.jpg")
CLIPS, TIMELINE, SNAPSHOTS = "clips", "timeline", "snapshots"  # subfolders (stages.outputs.clips, .timeline)
FOLDERS = {"": SEGMENT, CLIPS: CLIP, TIMELINE: re.compile(_STAMPED + r"\.jsonl"), SNAPSHOTS: SNAPSHOT}


@dataclass(frozen=True)
class Entry:
    path: Path
    size: int
    mtime: float  # when its newest content was written


def utc_stamp(t: float | None = None) -> str:
    """`20260101T120000Z`: a time (epoch seconds; None: now) in UTC, as run ids and file names carry it."""
    return f"{datetime.fromtimestamp(time.time() if t is None else t, UTC):%Y%m%dT%H%M%SZ}"


def segments(folder: Path, name: str, suffix: str = ".jsonl") -> list[Path]:
    """The segments of stream `name` (or `events`) in `folder`, oldest first: NAME.START[-N]SUFFIX."""
    pattern = re.compile(rf"{re.escape(name)}\.(\d{{8}}T\d{{6}}Z)(?:-(\d+))?{re.escape(suffix)}")
    found = [(m.group(1), int(m.group(2) or 1), p) for p in folder.glob(f"*{suffix}")
             if (m := pattern.fullmatch(p.name))]
    return [p for *_, p in sorted(found)]


def scan(folder: Path) -> list[Entry]:
    """The files of `folder` (and its FOLDERS) whose names live runs write."""
    found: list[Entry] = []
    for sub, pattern in FOLDERS.items():
        with contextlib.suppress(FileNotFoundError), os.scandir(folder / sub) as it:
            for e in it:
                if pattern.fullmatch(e.name) and e.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):  # deleted meanwhile (another pass)
                        st = e.stat(follow_symlinks=False)
                        found.append(Entry(Path(e.path), st.st_size, st.st_mtime))
    return found

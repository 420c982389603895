"""Retention of what live runs write: one pass over the output folder, oldest files first.

    OUT/STREAM.START.mp4  OUT/STREAM.START.jsonl  OUT/events.START.jsonl  OUT/clips/STREAM_LABEL_TIME.mp4
    OUT/timeline/STREAM.START.jsonl  OUT/snapshots/STREAM.START.jpg
        --scan(): one scandir of OUT and of each subfolder--> Entry(path, size, mtime)
        --plan(): last written longer ago than keep_s, then the oldest while the total is over
                  max_bytes--> Deletion(entry, why)
        --sweep(): deleted, one log line per pass that deleted something

Only names of exactly these patterns are candidates (START: `20261130T144700Z`, `-2` for a second
file in the same second; TIME: `20261130-154700`, local time): a user's notes.txt, cam1.mine.mp4,
users.json or tls/ are never looked at. A candidate must also be vidpipe's by its content (an
MP4's `comment` tag, a JSONL's first line carrying `run`, a JPEG), and it must not be in use: every live
writer holds a shared flock on the file it writes (hold()), and a pass skips a file it cannot
lock exclusively, so the file being written is never deleted, however old its last line.
A file that is not vidpipe's does not count towards max_bytes.

Live outputs run a pass (Retention) when a stream starts a new file and every PERIOD_S while
frames come, in a thread of its own: the sink's frames never wait for a scan or an unlink.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av

from vidpipe.stages.live_files import Entry, scan

log = logging.getLogger(__name__)

PERIOD_S = 60.0  # a pass this often while frames come (besides one per new file): one scandir each
RECORDING_TAG = "vidpipe live recording"  # the `comment` tag of recordings (stages.outputs.recording)
CLIP_TAG = "vidpipe event clip"  # and of event clips (stages.outputs.clips)
@dataclass(frozen=True)
class Deletion:
    entry: Entry
    why: str  # "age" (older than keep_s) or "size" (over max_bytes)


def _never(entry: Entry) -> bool:
    return False


def _always(entry: Entry) -> bool:
    return True


def plan(files: Sequence[Entry], now: float, keep_s: float, max_bytes: int,
         ours: Callable[[Entry], bool] = _always, busy: Callable[[Entry], bool] = _never) -> list[Deletion]:
    """What to delete, oldest first: every file last written more than `keep_s` before `now`
    (0: no age limit), then the oldest while the files' total exceeds `max_bytes` (0: no limit).
    `ours(entry)`: vidpipe made it (if not, it is kept and not counted); `busy(entry)`: it is being
    written (kept, counted). Both are asked only about files that would go, oldest first."""
    total = sum(f.size for f in files)
    deletions = []
    for f in sorted(files, key=lambda f: (f.mtime, f.path)):
        expired = keep_s > 0 and f.mtime < now - keep_s
        if not expired and not (max_bytes > 0 and total > max_bytes):
            break  # every later file is newer, and the total fits
        if not ours(f):
            total -= f.size
        elif not busy(f):
            deletions.append(Deletion(f, "age" if expired else "size"))
            total -= f.size
    return deletions


def hold(fd: int) -> None:
    """Marks the open file `fd` as being written (until it is closed): passes leave it alone."""
    with contextlib.suppress(OSError):  # a file system without flock: only its age protects it
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)


def in_use(entry: Entry) -> bool:
    """Some writer holds the file (hold()); also when it cannot be opened (then it is not deleted)."""
    try:
        fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # releases the lock


def made_by_vidpipe(entry: Entry) -> bool:
    """An MP4 tagged by a live writer, a JSONL whose first line has a `run`, a JPEG (snapshots are
    written whole, in vidpipe's own folder), or an empty file (killed before its first write)."""
    if entry.size == 0:
        return True
    try:
        if entry.path.suffix == ".mp4":
            with av.open(str(entry.path)) as container:
                return container.metadata.get("comment") in (RECORDING_TAG, CLIP_TAG)
        with entry.path.open("rb") as f:
            if entry.path.suffix == ".jpg":
                return f.read(3) == b"\xff\xd8\xff"
            first = json.loads(f.readline(1 << 16))
        return isinstance(first, dict) and "run" in first
    except (OSError, ValueError, av.error.FFmpegError):  # unreadable, not JSON, not a video: kept
        return False


def sweep(folder: Path, now: float, keep_s: float, max_bytes: int) -> list[Deletion]:
    """One pass: scan, plan, delete; logs one line when something was deleted."""
    done = []
    for d in plan(scan(folder), now, keep_s, max_bytes, made_by_vidpipe, in_use):
        try:
            d.entry.path.unlink()
            done.append(d)
        except FileNotFoundError:
            pass  # another stream's pass was first
        except OSError as exc:
            log.warning("retention: cannot delete %s (%s)", d.entry.path, exc.strerror)
    if done:
        log.info("retention: deleted %s", describe(done, folder, keep_s, max_bytes))
    return done


def describe(done: Sequence[Deletion], folder: Path, keep_s: float, max_bytes: int) -> str:
    """`3 files (1.20 GB) in out: 2 last written over 7 d ago (live.record_keep_s), 1 to stay ...`"""
    age = sum(d.why == "age" for d in done)
    why = ([f"{age} last written over {_span(keep_s)} ago (live.record_keep_s)"] if age else []) + (
        [f"{len(done) - age} to stay under {max_bytes / 1e9:g} GB (live.max_disk_gb)"] if len(done) > age else [])
    size = sum(d.entry.size for d in done)
    amount = f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"
    return f"{len(done)} files ({amount}) in {folder}: {', '.join(why)}"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


class Retention:
    """Passes over one output folder for one stream's outputs, in the sink: poll() with every
    frame (a clock read unless a pass is due), ask() when a new file starts; close() waits for
    a pass under way. At most one pass of this object runs at a time."""

    def __init__(self, folder: Path, keep_s: float, max_bytes: int, period_s: float = PERIOD_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.folder, self.keep_s, self.max_bytes = folder, keep_s, max_bytes
        self.period_s, self.clock = period_s, clock
        self._asked = True  # a first pass when frames start
        self._next = 0.0
        self._thread: threading.Thread | None = None

    def ask(self, path: Path | None = None) -> None:
        """A new file was started (`path`): a pass at the next poll()."""
        self._asked = True

    def poll(self) -> None:
        if not self._asked and time.monotonic() < self._next:
            return
        if self._thread is not None:
            if self._thread.is_alive():
                return  # the pass under way sees the new file's predecessors too
            self._thread.join()
        self._asked, self._next = False, time.monotonic() + self.period_s
        self._thread = threading.Thread(target=self._pass, name="retention", daemon=True)
        self._thread.start()

    def _pass(self) -> None:
        try:
            sweep(self.folder, self.clock(), self.keep_s, self.max_bytes)
        except OSError as exc:  # the folder itself is gone or unreadable: the next pass tries again
            log.warning("retention: cannot scan %s (%s)", self.folder, exc)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

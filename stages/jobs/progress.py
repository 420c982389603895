"""What the person at the terminal sees: progress while files are labeled, and a summary table.

On a terminal (stderr), a block of lines redrawn in place:

    scenes        [#########...........]    61/120 frames    82 fps
    cup shot #1   [##..................]     3/30 frames     40 fps
    all 1/3 files [#######.............]   94/270 frames    120 fps  ETA 0:02

one line per open file and an overall line (files done/total, frames, fps, ETA). Each line is cut
to the terminal's width and cleared to its end, and lines no longer needed are cleared, so no
stale text is left at any width. Log lines written meanwhile go above the block (it is erased,
the line written, the block drawn again). The block is erased at the end (the table follows).
Elsewhere (a pipe, a file, CI): one log line per file started and finished.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from vidpipe.stages.events import Progress, StreamDone

log = logging.getLogger("vidpipe")

REFRESH_S = 0.1  # redraws at most this often (a file opening or closing redraws at once)
NAME_WIDTH = 16


@dataclass
class _File:
    done: int = 0
    total: int = 0
    fps: float = 0.0
    t_start: float = 0.0


class ProgressBars:
    """See the module docstring. `enabled=False` (--no-progress): nothing at all."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and _isatty(self.stream)
        self.files: dict[str, _File] = {}
        self.total_files = self.total_frames = 0
        self.finished = self.finished_frames = 0
        self.t0 = 0.0
        self.drawn = 0  # lines of the block on the screen now
        self.t_draw = 0.0
        self.lock = threading.RLock()  # log lines come from the log receiver thread
        self._handlers: list[tuple[logging.StreamHandler[Any], TextIO]] = []

    def start(self, files: int, frames: int) -> None:
        """The job's totals (frames: as the containers report them, 0 if unknown)."""
        self.total_files, self.total_frames = files, frames
        if self.tty and not self._handlers:
            self._handlers = _redirect_logs(self.stream, _AboveBars(self))

    def update(self, stream: str, done: int, total: int, fps: float = 0.0, **_: Any) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        self.t0 = self.t0 or now
        entry = self.files.get(stream)
        new = entry is None
        if entry is None:
            entry = self.files[stream] = _File(t_start=now)
            if not self.tty:
                log.info("%s: started (%s frames)", stream, total or "?")
        entry.done, entry.total, entry.fps = done, max(total, done), fps
        self._draw(force=new)

    def on_event(self, event: Any) -> None:
        """A job's event: a stream's progress, or its end."""
        if isinstance(event, Progress):
            self.update(event.stream, event.done, event.total, event.fps)
        elif isinstance(event, StreamDone):
            self.close(event.stream, event.error)

    def close(self, stream: str | None = None, error: str = "") -> None:
        """`stream` finished (with `error`, if any); None: the job is over, erase the block."""
        if not self.enabled:
            return
        if stream is None:
            with self.lock:
                self._erase()
                for handler, original in self._handlers:
                    handler.setStream(original)
                self._handlers = []
            return
        entry = self.files.pop(stream, None)
        if entry is None:
            return
        self.finished += 1
        self.finished_frames += entry.done
        if not self.tty:
            seconds = time.monotonic() - entry.t_start
            log.info("%s: finished, %d frames in %.1f s%s", stream, entry.done, seconds,
                     f": {error}" if error else "")
        self._draw(force=True)

    # -- the block ---------------------------------------------------------------------------

    def lines(self, width: int) -> list[str]:
        """The block's lines, each at most `width` - 1 characters (the last column would wrap)."""
        rows = [(name, f.done, f.total, f.fps, "") for name, f in self.files.items()]
        frames = self.finished_frames + sum(f.done for f in self.files.values())
        elapsed = time.monotonic() - self.t0 if self.t0 else 0.0
        fps = frames / elapsed if elapsed > 0 else 0.0
        left = max(0, self.total_frames - frames)
        eta = f"  ETA {_clock(left / fps)}" if fps > 0 and self.total_frames else ""
        rows.append((f"all {self.finished}/{self.total_files or '?'} files", frames, self.total_frames, fps, eta))
        tails = [f" {_count(done, total):>17} {rate:5.0f} fps{eta}" for _, done, total, rate, eta in rows]
        room = min(40, width - 1 - NAME_WIDTH - max(map(len, tails)) - 3)  # one bar length for the whole block
        return [(_cell(name, NAME_WIDTH) + _bar(done, total, room) + tail)[: max(0, width - 1)]
                for (name, done, total, _, _), tail in zip(rows, tails, strict=True)]

    def _draw(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self.t_draw < REFRESH_S:
            return
        with self.lock:
            self.t_draw = now
            lines = self.lines(_columns(self.stream))
            self._write(self._home() + "\x1b[K\n".join(lines) + "\x1b[K\x1b[J")
            self.drawn = len(lines)

    def _home(self) -> str:
        """To the first column of the block's first line."""
        return "\r" + (f"\x1b[{self.drawn - 1}A" if self.drawn > 1 else "")

    def _erase(self) -> None:
        if self.drawn:
            self._write(self._home() + "\x1b[J")
            self.drawn = 0

    def write_above(self, text: str) -> None:
        """A log line: erase the block, write the line, draw the block again."""
        with self.lock:
            self._erase()
            self._write(text)
            if self.files or self.finished:
                self._draw(force=True)

    def _write(self, text: str) -> None:
        # One write(2) for the whole block: a line-buffered text stream (stderr) would send it line
        # by line, and a terminal could show a half-drawn block between two of them.
        binary = getattr(self.stream, "buffer", None)
        if binary is None:
            self.stream.write(text)
            self.stream.flush()
            return
        self.stream.flush()
        binary.write(text.encode(getattr(self.stream, "encoding", None) or "utf-8", "replace"))
        binary.flush()


class _AboveBars:
    """The stream the log handler writes to while the bars are shown."""

    def __init__(self, bars: ProgressBars) -> None:
        self.bars = bars

    def write(self, text: str) -> int:
        self.bars.write_above(text)
        return len(text)

    def flush(self) -> None:
        self.bars.stream.flush()


def _redirect_logs(stream: TextIO, proxy: Any) -> list[tuple[logging.StreamHandler[Any], TextIO]]:
    """Points every log handler that writes to `stream` (the main process's, nested in
    multiprocessing-logging's handler included) at `proxy`; returns what to restore."""
    found = []
    for handler in logging.getLogger().handlers:
        for h in (handler, getattr(handler, "sub_handler", None)):
            if isinstance(h, logging.StreamHandler) and h.stream is stream:
                found.append((h, stream))
                h.setStream(proxy)
    return found


def _count(done: int, total: int) -> str:
    return f"{done}/{total or '?'} frames"


def _bar(done: int, total: int, room: int) -> str:
    """ [#####.....] of `room` characters inside the brackets ("" when there is no room for one)."""
    if room < 5:
        return ""
    filled = round(room * min(done, total) / total) if total else 0
    return " [" + "#" * filled + "." * (room - filled) + "]"


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return shutil.get_terminal_size().columns


# -- the summary table ------------------------------------------------------------------------


def format_table(headers: list[str], rows: list[list[str]], width: int = 80) -> str:
    """Columns two spaces apart, cut to `width`: the widest columns give way first (down to their
    header's width, then further if need be), and a cell that does not fit ends in "~" (the whole
    text is in summary.csv)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    for floors in ([len(h) for h in headers], [min(6, len(h)) for h in headers]):
        while sum(widths) + 2 * (len(widths) - 1) > width:
            room = [w - f for w, f in zip(widths, floors, strict=True)]
            if max(room) <= 0:
                break
            widths[room.index(max(room))] -= 1
    line = "  ".join(_cell(h, w) for h, w in zip(headers, widths, strict=True))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join(_cell(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


def _cell(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "~"


def print_table(headers: list[str], rows: list[list[str]], stream: TextIO | None = None) -> None:
    """Cut to the terminal's width on a terminal; whole (for a file, a pipe, a script) otherwise."""
    stream = stream or sys.stdout
    width = _columns(stream) if _isatty(stream) else sys.maxsize
    print(format_table(headers, rows, width), file=stream, flush=True)

"""Damaged pictures, counted: FFmpeg's decoder errors in a decode process, tied to the frames.

    errors = DecoderErrors.capture()    # in the decode process, before its first capture opens
    ...cap.grab(); cap.retrieve()...
    if errors.drain(): damaged.add(seq) # error lines since the last frame: this frame is damaged
    errors.close()                      # stderr back as it was

FFmpeg conceals a damaged macroblock and hands the picture on ("error while decoding MB 11 2"):
OpenCV says nothing of it and returns the frame as if whole. With OPENCV_FFMPEG_DEBUG and the
log level at AV_LOG_ERROR, OpenCV's FFmpeg backend prints those errors on stdout; the decode
process (it logs through the job's queue, never on stdout) points its stdout at a pipe, made
unbuffered, and reads it after each frame. With one decoder thread an error belongs to the frame just decoded; with
frame threads (large videos) to one of the frames in flight, so the range reported may be off by
the number of threads. The variables are read when FFmpeg is first used in a process: a decode
process started by fork from a parent that had used it already sees nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
from dataclasses import dataclass, field

ERROR_LEVEL = "16"  # AV_LOG_ERROR
MARK = b"[OPENCV:FFMPEG:"
OUT = 1  # OpenCV prints FFmpeg's messages with C stdio on stdout, which a decode process does not use
PIPE_BYTES = 1 << 20


@dataclass
class Damage:
    """The damaged frames of one video: those the decoder reported errors in, and the frames after
    each up to the next keyframe, which are predicted from the concealed picture."""

    path: str
    frames: list[int] = field(default_factory=list)
    keyframes: list[int] | None = None  # presentation indices, read when damage is first seen
    _until: float = -1  # frames before this index follow a damaged one

    def frame(self, seq: int, errors: int) -> bool:
        """Whether frame `seq` is damaged, given the decoder errors reported while it was decoded."""
        if errors:
            if self.keyframes is None:
                self.keyframes = keyframe_indices(self.path)
            self._until = next((k for k in self.keyframes if k > seq), float("inf"))
        elif seq >= self._until or (self.keyframes is not None and seq in self.keyframes):
            self._until = -1
        if errors or seq < self._until:
            self.add(seq)
            return True
        return False

    def add(self, seq: int) -> None:
        if not self.frames or self.frames[-1] != seq:
            self.frames.append(seq)


class DecoderErrors:
    """See the module docstring."""

    def __init__(self, read_fd: int, saved_stderr: int) -> None:
        self._read, self._saved = read_fd, saved_stderr
        self._pending = b""

    @classmethod
    def capture(cls) -> DecoderErrors:
        os.environ["OPENCV_FFMPEG_DEBUG"] = "1"
        os.environ["OPENCV_FFMPEG_LOGLEVEL"] = ERROR_LEVEL
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        with contextlib.suppress(OSError):  # room for a badly damaged frame's lines between two drains
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        _unbuffered_c_stdout()  # each line reaches the pipe when it is written, not at exit
        saved = os.dup(OUT)
        os.dup2(write_fd, OUT)
        os.close(write_fd)
        return cls(read_fd, saved)

    def drain(self) -> int:
        """FFmpeg error lines written since the last call (never blocks)."""
        chunks = [self._pending]
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        data = b"".join(chunks)
        lines, _, self._pending = data.rpartition(b"\n")
        split = lines.split(b"\n")
        errors = [line for line in split if MARK in line]
        other = [line for line in split if line and MARK not in line]
        if other:  # not FFmpeg's: on to where the process's stdout went
            with contextlib.suppress(OSError):
                os.write(self._saved, b"\n".join(other) + b"\n")
        return len(errors)

    def close(self) -> None:
        """Idempotent: stderr is the process's own again."""
        if self._saved >= 0:
            with contextlib.suppress(OSError):
                os.dup2(self._saved, OUT)
                os.close(self._saved)
                os.close(self._read)
            self._saved = -1


def _unbuffered_c_stdout() -> None:
    """setvbuf(stdout, NULL, _IONBF, 0): C's stdout, fully buffered when it is not a terminal,
    would hold OpenCV's lines until the process exits."""
    libc = ctypes.CDLL(None)
    stdout = ctypes.c_void_p.in_dll(libc, "stdout")
    libc.setvbuf(stdout, None, 2, 0)  # _IONBF


def keyframe_indices(path: str) -> list[int]:
    """The presentation indices of the keyframes of the first video stream (a demux pass with
    PyAV: no decoding); [] if it cannot be read."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.pts is not None]
    except (av.FFmpegError, OSError, IndexError):
        return []
    order = {pts: i for i, pts in enumerate(sorted(pts for pts, _ in packets))}
    return sorted(order[pts] for pts, key in packets if key)

"""Live recordings that survive anything: per stream, fragmented MP4 files cut into segments.

A live run has no end to wait for, so a recording is written in place as fragmented MP4
(H264Writer(fragmented=True)): it plays while it is being written and, after a crash or a kill -9,
up to its last fragment (about a second is lost); after a power cut, up to its last fsync (every
FSYNC_S). A file covers `live.record_segment_s` of the stream's time (the next frame after that
opens the next file; 0: one file per run) and is named after the capture time (UTC) of its first
frame, `STREAM.20261130T144700Z.mp4`, so later segments and later runs never replace earlier ones.
Each frame keeps its own time (VFR).

Retention (`live.record_keep_s`, 0: keep everything): whenever a file is opened, this stream's
earlier recordings last written longer ago than that are deleted. Only files vidpipe made are
candidates: the stream's name pattern and the tag MADE_BY in the file's own metadata.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path

import av
import numpy as np

from vidpipe.stages.config import OutputSettings
from vidpipe.stages.outputs.live_records import utc_stamp
from vidpipe.stages.outputs.writers import H264Writer

log = logging.getLogger(__name__)

NOMINAL_FPS = 30.0  # only the rate the encoder's rate control assumes: each frame keeps its time
FSYNC_S = 5.0  # written fragments reach the disk at least this often (a power cut loses at most this)
MADE_BY = "vidpipe live recording"  # the `comment` tag of every recording: retention deletes only these


class SegmentedRecording:
    """The recording of one stream: write() each frame with its time; close() at the end."""

    def __init__(self, folder: Path, stream: str, size: tuple[int, int], out: OutputSettings,
                 segment_s: float, keep_s: float = 0.0) -> None:
        self.folder, self.stream, self.size = folder, stream, size
        self.out, self.segment_s, self.keep_s = out, segment_s, keep_s
        self.files: list[Path] = []
        self._writer: H264Writer | None = None
        self._sync_fd = -1  # a descriptor of the file being written, for fsync
        self._synced = 0.0
        self._start_pts = 0.0

    def write(self, image: np.ndarray, pts_s: float, t_capture: float) -> None:
        """`pts_s`: the frame's time on the stream's clock; `t_capture`: its wall clock (epoch)."""
        if self._writer is None or (self.segment_s and pts_s - self._start_pts >= self.segment_s):
            self._next_file(pts_s, t_capture)
        assert self._writer is not None
        self._writer.write(image, pts_s)
        if time.monotonic() - self._synced >= FSYNC_S:
            self._sync()

    def close(self, abort: bool = False) -> None:
        writer, fd = self._writer, self._sync_fd
        self._writer, self._sync_fd = None, -1
        try:
            if writer is not None:
                writer.close(abort)
        finally:  # a failed close (a full disk) must not keep the file open
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.fsync(fd)
                os.close(fd)

    def _sync(self) -> None:
        """Written fragments to the disk (the file appears with its first packet)."""
        self._synced = time.monotonic()
        if self._sync_fd < 0 and self.files[-1].exists():
            self._sync_fd = os.open(self.files[-1], os.O_RDONLY)
        if self._sync_fd >= 0:
            os.fsync(self._sync_fd)

    def _next_file(self, pts_s: float, t_capture: float) -> None:
        self.close()
        path = self._free_name(utc_stamp(t_capture))
        width, height = self.size
        self._writer = H264Writer(path, width, height, NOMINAL_FPS, preset=self.out.video_preset,
                                  crf=self.out.video_crf, vfr=True, fragmented=True, metadata={"comment": MADE_BY})
        self._synced = time.monotonic()
        self._start_pts = pts_s
        self.files.append(path)
        log.info("%s: recording to %s", self.stream, path)
        if self.keep_s:
            self._expire(path)

    def _expire(self, current: Path) -> None:
        """Delete this stream's own recordings last written more than keep_s ago."""
        pattern = re.compile(re.escape(self.stream) + r"\.\d{8}T\d{6}Z(-\d+)?\.mp4")
        cutoff = time.time() - self.keep_s
        for path in self.folder.iterdir():
            if path == current or not pattern.fullmatch(path.name):
                continue
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff and _made_by_vidpipe(path):
                    path.unlink()
                    log.info("%s: deleted %s (older than live.record_keep_s)", self.stream, path.name)

    def _free_name(self, stamp: str) -> Path:
        """A name no file has: a restart within the same second gets -2, -3..."""
        path, n = self.folder / f"{self.stream}.{stamp}.mp4", 1
        while path.exists():
            n += 1
            path = self.folder / f"{self.stream}.{stamp}-{n}.mp4"
        return path


def _made_by_vidpipe(path: Path) -> bool:
    try:
        with av.open(str(path)) as container:
            return container.metadata.get("comment") == MADE_BY
    except (av.error.FFmpegError, OSError):
        return False

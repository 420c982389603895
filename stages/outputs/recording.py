"""Live recordings that survive anything: per stream, fragmented MP4 files cut into segments.

A live run has no end to wait for, so a recording is written in place as fragmented MP4
(H264Writer(fragmented=True)): it plays while it is being written and, after a crash or a kill -9,
up to its last fragment (about a second is lost); after a power cut, up to its last fsync (every
FSYNC_S). A file covers `live.record_segment_s` of the stream's time (the next frame after that
opens the next file; 0: one file per run) and is named after the capture time (UTC) of its first
frame, `STREAM.20261130T144700Z.mp4`, so later segments and later runs never replace earlier ones.
Each frame keeps its own time (VFR). Every file carries the tag RECORDING_TAG in its own metadata
and is held (retention.hold) while written: retention (stages.outputs.retention, `live.record_keep_s`,
`live.max_disk_gb`) deletes old recordings, never the one being written; `on_new_file(path)` hears
of each new file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vidpipe.stages.config import OutputSettings
from vidpipe.stages.live_files import utc_stamp
from vidpipe.stages.outputs.retention import RECORDING_TAG, hold
from vidpipe.stages.outputs.writers import H264Writer

log = logging.getLogger(__name__)

NOMINAL_FPS = 30.0  # only the rate the encoder's rate control assumes: each frame keeps its time
FSYNC_S = 5.0  # written fragments reach the disk at least this often (a power cut loses at most this)


class SegmentedRecording:
    """The recording of one stream: write() each frame with its time; close() at the end."""

    def __init__(self, folder: Path, stream: str, size: tuple[int, int], out: OutputSettings,
                 segment_s: float, on_new_file: Callable[[Path], None] | None = None) -> None:
        self.folder, self.stream, self.size = folder, stream, size
        self.out, self.segment_s, self.on_new_file = out, segment_s, on_new_file
        self.files: list[Path] = []
        self._writer: H264Writer | None = None
        self._sync_fd = -1  # a descriptor of the file being written: fsync, and retention's hold
        self._synced = 0.0
        self._start_pts = 0.0

    def write(self, image: np.ndarray, pts_s: float, t_capture: float) -> None:
        """`pts_s`: the frame's time on the stream's clock; `t_capture`: its wall clock (epoch)."""
        if self._writer is None or (self.segment_s and pts_s - self._start_pts >= self.segment_s):
            self._next_file(pts_s, t_capture)
        assert self._writer is not None
        self._writer.write(image, pts_s)
        if self._sync_fd < 0 and self.files[-1].exists():  # the file appears with its first packet
            self._sync_fd = os.open(self.files[-1], os.O_RDONLY | os.O_CLOEXEC)
            hold(self._sync_fd)
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
        """Written fragments to the disk."""
        self._synced = time.monotonic()
        if self._sync_fd >= 0:
            os.fsync(self._sync_fd)

    def _next_file(self, pts_s: float, t_capture: float) -> None:
        self.close()
        path = self._free_name(utc_stamp(t_capture))
        width, height = self.size
        self._writer = H264Writer(path, width, height, NOMINAL_FPS, preset=self.out.video_preset,
                                  crf=self.out.video_crf, vfr=True, fragmented=True,
                                  metadata={"comment": RECORDING_TAG})
        self._synced = time.monotonic()
        self._start_pts = pts_s
        self.files.append(path)
        log.info("%s: recording to %s", self.stream, path)
        if self.on_new_file is not None:
            self.on_new_file(path)

    def _free_name(self, stamp: str) -> Path:
        """A name no file has: a restart within the same second gets -2, -3..."""
        path, n = self.folder / f"{self.stream}.{stamp}.mp4", 1
        while path.exists():
            n += 1
            path = self.folder / f"{self.stream}.{stamp}-{n}.mp4"
        return path


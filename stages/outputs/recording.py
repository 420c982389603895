"""Live recordings that survive anything: per stream, fragmented MP4 files cut into segments.

A live run has no end to wait for, so a recording is written in place as fragmented MP4
(H264Writer(fragmented=True)): it plays while it is being written and, after a crash, a kill -9
or a power cut, up to its last fragment (about a second). A file covers `live.record_segment_s`
of the stream's time (the next frame after that opens the next file; 0: one file per run) and is
named after the wall-clock time (UTC) of its first frame, `STREAM.20261130T144700Z.mp4`, so
later segments and later runs never replace earlier ones. Each frame keeps its own time (VFR).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from stages.config import OutputSettings
from stages.outputs.writers import H264Writer

log = logging.getLogger(__name__)

NOMINAL_FPS = 30.0  # only the rate the encoder's rate control assumes: each frame keeps its time


class SegmentedRecording:
    """The recording of one stream: write() each frame with its time; close() at the end."""

    def __init__(self, folder: Path, stream: str, size: tuple[int, int], out: OutputSettings,
                 segment_s: float) -> None:
        self.folder, self.stream, self.size = folder, stream, size
        self.out, self.segment_s = out, segment_s
        self.files: list[Path] = []
        self._writer: H264Writer | None = None
        self._start_pts = 0.0

    def write(self, image: np.ndarray, pts_s: float) -> None:
        if self._writer is None or (self.segment_s and pts_s - self._start_pts >= self.segment_s):
            self._next_file(pts_s)
        assert self._writer is not None
        self._writer.write(image, pts_s)

    def close(self, abort: bool = False) -> None:
        if self._writer is not None:
            self._writer.close(abort)
            self._writer = None

    def _next_file(self, pts_s: float) -> None:
        self.close()
        path = self._free_name(time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        width, height = self.size
        self._writer = H264Writer(path, width, height, NOMINAL_FPS, preset=self.out.video_preset,
                                  crf=self.out.video_crf, vfr=True, fragmented=True)
        self._start_pts = pts_s
        self.files.append(path)
        log.info("%s: recording to %s", self.stream, path)

    def _free_name(self, stamp: str) -> Path:
        """A name no file has: a restart within the same second gets -2, -3..."""
        path, n = self.folder / f"{self.stream}.{stamp}.mp4", 1
        while path.exists():
            n += 1
            path = self.folder / f"{self.stream}.{stamp}-{n}.mp4"
        return path

"""The annotated video of one labeled stream: frames in order, each drawn with its own smoothed
label once the smoother knows it (`lag` frames later), then H.264 encoded.

    video.frame(label, pixels, release)   # a frame and its raw label; `release` frees its slot
    video.smoothed(s)                     # the oldest held frame's smoothed label: draw + encode
    video.detach()                        # frames still held are copied, their slots released
    video.close(abort)

Where it runs: in the encoder processes (stages.outputs.encoder; pixels are the frame slot, drawn
on in place and released after encoding, so a frame whose label comes in the same inbox batch is
never copied) or, with no encoder process, inside the sink (stages.outputs.label). Same code.
Memory: at most `lag` frames are held, as copies once `detach()` ran; the copies' buffers are
reused (a fresh 640x360 array per copy costs page faults: ~10% of an encoder's time in a profile).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidpipe.stages.outputs.chunks import ChunkOf, chunk_path
from vidpipe.stages.outputs.overlay import draw_labels
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import SmoothedLabel
from vidpipe.stages.outputs.writers import H264Writer


@dataclass(frozen=True)
class VideoSpec:
    """What an annotated video is: where it goes, its size and rate, the encoder's settings."""

    path: str
    width: int
    height: int
    fps: float
    preset: str
    crf: int
    threads: int  # libx264 threads; 0 = x264's own choice (frame threads, 1.5 per core)
    top: int  # raw labels drawn
    chunk: ChunkOf | None = None  # one chunk of a split video: frames at their input times (chunks)
    keyint: int = 0  # x264 GOP length (0: x264's)


@dataclass
class _Held:
    label: FrameLabel
    pixels: np.ndarray
    release: Callable[[], None] | None  # frees the slot `pixels` is a view of (None: a copy)


class AnnotatedVideo:
    """See the module docstring. May block: in smoothed() (encoding) and close() (flush)."""

    def __init__(self, spec: VideoSpec) -> None:
        self.spec = spec
        options = {"g": str(spec.keyint)} if spec.keyint else {}
        # each frame at its own time (the input's, variable frame rate kept), split into chunks or not;
        # the same settings in every chunk: one SPS/PPS for the join
        path = Path(spec.path) if spec.chunk is None else chunk_path(Path(spec.chunk.final), spec.chunk.index)
        self.writer = H264Writer(path, spec.width, spec.height, spec.fps, preset=spec.preset, crf=spec.crf,
                                 threads=spec.threads, options=options, fmt="mp4", vfr=True, origin_s=0.0)
        self.held: deque[_Held] = deque()
        self.spare: list[np.ndarray] = []  # buffers of copies already encoded

    def frame(self, label: FrameLabel, pixels: np.ndarray, release: Callable[[], None] | None) -> None:
        self.held.append(_Held(label, pixels, release))

    def smoothed(self, smoothed: SmoothedLabel) -> None:
        held = self.held.popleft()
        label = held.label
        assert label.index == smoothed.index, (label.index, smoothed.index)
        try:
            draw_labels(held.pixels, label.names, label.scores, top=self.spec.top,
                        smoothed=(smoothed.name, smoothed.score), time_s=label.timestamp_s)
            self.writer.write(held.pixels, label.timestamp_s)
        finally:
            if held.release is not None:
                held.release()
            else:
                self.spare.append(held.pixels)

    def detach(self) -> None:
        """Frames still waiting for their label no longer hold a slot: copied, slot released."""
        for held in self.held:
            if held.release is not None:
                copy = self.spare.pop() if self.spare else np.empty_like(held.pixels)
                np.copyto(copy, held.pixels)
                held.pixels = copy
                held.release()
                held.release = None

    def write_held(self) -> None:
        """Cut short (abort): frames whose smoothed label will not come are written with their
        raw top-1 as the headline, so the video has every frame that was sent to it."""
        while self.held:
            label = self.held[0].label
            score = label.scores[0] if label.scores else None
            self.smoothed(SmoothedLabel(label.index, label.timestamp_s, label.top1, label.names[0], score or 0.0))

    def release_all(self) -> None:
        """Frames that will never be written (a failed or aborted video): their slots freed."""
        while self.held:
            held = self.held.popleft()
            if held.release is not None:
                held.release()

    def close(self, abort: bool) -> None:
        try:
            if abort:
                self.write_held()
        finally:
            self.release_all()
            self.writer.close(abort=abort)

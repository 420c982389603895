"""Live source process: a LiveCapture (reconnecting capture thread) feeding the frame ring.

Policy `latest`: the stage first takes a free frame slot, then the newest captured frame, so
when the pipeline is behind, older frames are replaced in the capture thread (counted as
capture drops) instead of queueing up: latency stays bounded. Frames then older than the
staleness budget are dropped by preprocess, before any work is spent on them.

May block: on a free slot and on the next frame (bounded by short timeouts, so stop and abort
are seen within half a second). Ends on stop_sources, on its own `stop` event (the stream was
removed at run time: its StreamEnd flows and its outputs finalize), or when the source fails for
good. Every frame and status leaves at once (send, not emit): a live frame never waits for a batch.

Restarts: the frame numbers live in `seq` (shared memory), so a source process restarted after a
crash goes on numbering where the dead one stopped and the sink's per-stream order holds.

A source that fails for good (it never opened within its retries, or `retry_forever` is off) is
one SourceGaveUp for the job, which ends the run when no source is left (stages.jobs.live).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vidpipe.pipeline.errors import SourceError
from vidpipe.pipeline.flags import Flag
from vidpipe.pipeline.redact import mask_url
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.stage import Stage
from vidpipe.stages.config import SourceSettings
from vidpipe.stages.descriptors import FrameRef, SourceStatus, StreamEnd, StreamStart
from vidpipe.stages.events import SourceProblem
from vidpipe.stages.sources.capture import CapturedFrame, LiveCapture

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 1.0


@dataclass(frozen=True)
class SourceGaveUp(SourceProblem):
    """A live source failed for good and its process ends (not restarted: it exits cleanly)."""


@dataclass(frozen=True)
class LiveSourceParams:
    stream: str
    source: SourceSettings
    frames: SlotRing
    max_width: int  # larger frames are scaled down to fit a frame slot
    max_height: int
    stop: Flag | None = None  # end this stream (removed at run time); None: only stop_sources
    seq: Any = None  # multiprocessing RawValue("q"): the next frame number, kept across restarts


def fit(frame: np.ndarray, max_width: int, max_height: int) -> np.ndarray:
    """The frame, scaled down (aspect kept) if it is larger than a frame slot allows."""
    h, w = frame.shape[:2]
    scale = min(max_width / w, max_height / h, 1.0)
    if scale >= 1.0:
        return frame
    return cv2.resize(frame, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)


class LiveSourceStage(Stage[LiveSourceParams]):
    """One camera or stream; see the module docstring."""

    def open(self) -> None:
        self.cap = LiveCapture(self.params.source, name=self.params.stream)
        self.seq = self.params.seq.value if self.params.seq is not None else 0
        self.started = False

    @property
    def removed(self) -> bool:
        return self.params.stop is not None and self.params.stop.is_set()

    def close(self) -> None:
        if hasattr(self, "cap"):
            self.cap.close(timeout=5.0)

    def produce(self) -> None:
        error, t_status = "", 0.0
        frames = self.params.frames
        while not self.stopping and not self.removed:
            slot = self.acquire(frames)
            try:
                got = self.cap.get_latest(timeout=0.5)
            except SourceError as exc:
                frames.release(slot)
                error = str(exc)
                break
            if got is not None:
                self._send_frame(slot, got)
            else:
                frames.release(slot)
                if self.cap.done:
                    break
            if time.monotonic() - t_status >= STATUS_INTERVAL_S:
                t_status = time.monotonic()
                self.send(self._status())
        self.cap.close(timeout=5.0)
        self.send(self._status(error))
        if error:
            self.report(SourceGaveUp(self.params.stream, self.cap.display_uri, mask_url(error)))
        if self.started or self.seq > 0:  # (a restarted process: its predecessor started the stream)
            self.send(StreamEnd(self.params.stream, self.seq, error))

    def _send_frame(self, slot: int, got: CapturedFrame) -> None:
        p = self.params
        image = fit(got.frame, p.max_width, p.max_height)
        h, w = image.shape[:2]
        if not self.started:
            self.send(StreamStart(p.stream, self.cap.display_uri, w, h, 0.0, 0, live=True))
            self.started = True
        p.frames.view(slot, (h, w, 3))[:] = image
        self.send(FrameRef(p.stream, self.seq, slot, h, w, got.pts_s, got.t_capture))
        self.seq += 1
        if p.seq is not None:
            p.seq.value = self.seq

    def _status(self, error: str = "") -> SourceStatus:
        s = self.cap.stats()
        return SourceStatus(self.cap.name, s.state, s.reconnects, s.drops, s.fps, mask_url(error or s.error))

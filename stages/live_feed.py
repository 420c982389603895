"""Live source process: a LiveCapture (reconnecting capture thread) feeding the frame ring.

Policy `latest`: the process first takes a free frame slot, then the newest captured frame, so
when the pipeline is behind, older frames are replaced in the capture thread (counted as
capture drops) instead of queueing up: latency stays bounded. Frames then older than the
staleness budget are dropped by preprocess, before any work is spent on them.

May block: on a free slot and on the next frame (bounded by short timeouts, so stop and abort
are seen within half a second). Ends on stop_sources, or when the source fails for good.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.channels import Channel
from pipeline.errors import SourceError
from pipeline.redact import mask_url
from pipeline.shm import SlotRing
from pipeline.stage import StageContext
from stages.config import SourceSettings
from stages.descriptors import FrameRef, SourceStatus, StreamEnd, StreamStart
from stages.live_source import CaptureOptions, LiveCapture

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 1.0


@dataclass(frozen=True)
class LiveSourceSpec:
    stream: str
    source: SourceSettings
    max_width: int
    max_height: int


def capture_options(source: SourceSettings) -> CaptureOptions:
    return CaptureOptions(
        realtime=source.realtime,
        loop=source.loop,
        slideshow_fps=source.slideshow_fps,
        stall_timeout_s=source.stall_timeout_s,
        max_retries=source.max_retries,
    )


def fit(frame: np.ndarray, max_width: int, max_height: int) -> np.ndarray:
    """The frame, scaled down (aspect kept) if it is larger than a frame slot allows."""
    h, w = frame.shape[:2]
    scale = min(max_width / w, max_height / h, 1.0)
    if scale >= 1.0:
        return frame
    return cv2.resize(frame, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)


def run_live_source(ctx: StageContext, spec: LiveSourceSpec, frames: SlotRing, out: Channel) -> None:
    cap = LiveCapture(spec.source.uri, capture_options(spec.source), name=spec.stream)
    seq, error, started, t_status = 0, "", False, 0.0
    try:
        while not ctx.stop_sources.is_set():
            slot = frames.acquire_or_abort(out.aborted)
            try:
                got = cap.get_latest(timeout=0.5)
            except SourceError as exc:
                frames.release(slot)
                error = str(exc)
                break
            if got is None:
                frames.release(slot)
                if cap.done:
                    break
            else:
                image = fit(got.frame, spec.max_width, spec.max_height)
                h, w = image.shape[:2]
                if not started:
                    out.put(StreamStart(spec.stream, cap.display_uri, w, h, 0.0, 0, live=True))
                    started = True
                frames.view(slot, (h, w, 3))[:] = image
                out.put(FrameRef(spec.stream, seq, slot, h, w, got.pts_s, got.t_capture))
                seq += 1
            if time.monotonic() - t_status >= STATUS_INTERVAL_S:
                t_status = time.monotonic()
                out.put(_status(cap))
    finally:
        cap.close(timeout=5.0)
    out.put(_status(cap, error))
    if error:
        ctx.report("source_error", stream=spec.stream, message=mask_url(error))
    if started:
        out.put(StreamEnd(spec.stream, seq, error))


def _status(cap: LiveCapture, error: str = "") -> SourceStatus:
    s = cap.stats()
    return SourceStatus(cap.name, s.state.value, s.reconnects, s.drops, s.fps, mask_url(error or s.error))

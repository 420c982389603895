"""Small descriptors that travel on the queues between stages. Pixels never do: they live in
shared-memory slot rings (pipeline.shm) and a descriptor names the slot.

    source --FrameRef--> preprocess --TensorRef--> infer --Result--> sink
    source --StreamStart/StreamEnd/SourceStatus-------------------------> sink (markers, same path)
    infer  --LabelInfo (once, before its first Result)-----------------> sink
    infer  --InferStats (about once a second while it works)-------------> sink (live metrics)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StreamStart:
    """A source opened: what the sink needs to create its outputs."""

    stream: str  # stream id, unique per job (e.g. the file stem, made unique)
    uri: str  # masked (no credentials) source name for messages
    width: int
    height: int
    fps: float  # nominal frame rate (container's average rate; 0 if unknown)
    frame_count: int  # as the container reports it (may be wrong); 0 if unknown
    live: bool


@dataclass(frozen=True)
class StreamEnd:
    """A source finished: `frames` sequence numbers 0..frames-1 were sent for it.

    `error` is a one-line message when the source ended because of a problem (truncated file...).
    """

    stream: str
    frames: int
    error: str = ""


@dataclass(frozen=True)
class FrameRef:
    """One decoded frame in the frame ring."""

    stream: str
    seq: int  # 0, 1, 2... per stream; the sink reorders by it
    slot: int  # frame ring slot holding the BGR uint8 pixels
    height: int
    width: int
    pts_s: float  # presentation timestamp from the container / capture clock, seconds
    t_capture: float  # time.time() when the frame was decoded/captured
    dropped: bool = False  # live edges: dropped for staleness, slot still to be released by sink
    drop_reason: str = ""  # stale (preprocess), late or superseded (infer); see stages.infer
    damaged: bool = False  # the decoder reported errors in this picture (stages.sources.damage)


@dataclass(frozen=True)
class TensorRef:
    """A preprocessed frame: `tensor_slot` of the tensor ring holds int8 (224, 224, 3)."""

    frame: FrameRef
    tensor_slot: int  # -1 when frame.dropped
    t_preprocessed: float


@dataclass(frozen=True)
class Result:
    """Classification of one frame (or a dropped marker) on its way to the sink."""

    frame: FrameRef
    top5: tuple[int, ...]
    scores: tuple[float, ...] | None
    t_preprocessed: float
    t_infer_start: float
    t_infer_done: float
    timings: dict[str, float] = field(default_factory=dict)  # per-image upload/compute/download s


@dataclass(frozen=True)
class InferStats:
    """What one infer process did since its last report (about once a second while it works),
    for the live metrics: batch sizes and the time the card had a batch in flight.

    `batches` maps batch size -> batches launched; `busy_s` is the part of `wall_s` during which at
    least one batch was started and not yet read back (start() to the return of wait())."""

    infer: str  # "infer-0": the process name, as in vidpipe_restarts_total{stage}
    batches: dict[int, int]
    busy_s: float
    wall_s: float


class SourceState(enum.Enum):
    """Where a live source's capture state machine is (stages.sources.capture)."""

    CONNECTING = "connecting"
    STREAMING = "streaming"
    STALLED = "stalled"
    BACKING_OFF = "backing_off"
    FAILED = "failed"  # gave up: see the capture's error
    ENDED = "ended"  # a finite source (file without loop, slideshow without loop) is over
    CLOSED = "closed"


FINAL_STATES = (SourceState.FAILED, SourceState.ENDED, SourceState.CLOSED)


@dataclass(frozen=True)
class SourceStatus:
    """A live source's state, sent along the data path about once a second."""

    stream: str
    state: SourceState
    reconnects: int
    capture_drops: int  # frames the camera delivered that were replaced by newer ones
    fps: float
    error: str = ""


@dataclass(frozen=True)
class LabelInfo:
    """Sent once by each infer process before its first result: how to name class ids."""

    backend: str
    names: tuple[str, ...]
    meaningful: bool  # False: the backend's ids mean nothing (sim)

    def display_names(self) -> tuple[str, ...]:
        """Class names, or a plain statement that this backend's ids mean nothing (sim)."""
        if self.meaningful:
            return self.names
        return tuple(f"{self.backend}: no label" for _ in self.names)


class QueueDepths(dict[str, int]):
    """Queue name -> items waiting, from the sink to its outputs (metrics)."""

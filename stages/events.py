"""The domain's events, from stage processes to the job in the main process (pipeline.events
has the base and StageFailure). Frozen dataclasses: a job matches on the type, never on a string.

    sink    --Progress (a few times a second per stream), StreamDone (once per stream)--> job
    sink    --FrameResults (each frame's labels, batched; only when the caller asked)--> job
    source  --SourceProblem (an input that failed or ended early)-------------------------> job
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidpipe.pipeline.events import Event


@dataclass(frozen=True)
class Progress(Event):
    stream: str
    done: int  # frames written, in order
    total: int  # as the container reports it; 0 if unknown
    fps: float
    dropped: int = 0


@dataclass(frozen=True)
class SourceProblem(Event):
    """An input failed or ended early; `message` is one line naming it."""

    stream: str
    path: str  # the input (masked uri for live sources)
    message: str


@dataclass(frozen=True)
class SourceWarning(Event):
    """An input was labeled, with something to say about it (damaged frames); one line."""

    stream: str
    path: str
    message: str


@dataclass(frozen=True)
class OutputSummary:
    """What a stream's outputs say when they close: labels by share of time (best first)."""

    top: tuple[tuple[str, float], ...] = ()
    segments: int = 0


@dataclass(frozen=True)
class StreamDone(Event):
    stream: str
    uri: str
    frames: int  # written
    dropped: int
    seconds: float  # first output made -> stream finished
    error: str = ""  # one line when the stream ended early or was cut short
    summary: OutputSummary = field(default_factory=OutputSummary)
    host: str = ""  # where it was labeled, when not this host (a Ray worker's)

    @property
    def cut_short(self) -> bool:
        """Ended by a drain (Ctrl-C) or an abort: its outputs are partial (incomplete, never published)."""
        return self.error == "interrupted" or self.error.startswith("cut short")


@dataclass(frozen=True)
class FrameResult:
    """One frame's labels, as the Python API hands them to the caller (`vidpipe.FrameResult`)."""

    video: str  # the video's (or live stream's) name: its outputs are OUT/NAME.*
    frame: int  # 0-based index in the video
    t: float  # seconds from the video's start (the container's time)
    top5: tuple[int, ...]  # class ids, best first
    names: tuple[str, ...]  # their names
    scores: tuple[float, ...] | None  # their scores 0..1 (None: the backend gives none, e.g. the card)

    @property
    def label(self) -> str:
        """The top-1 name."""
        return self.names[0]

    @property
    def score(self) -> float | None:
        return self.scores[0] if self.scores else None

    def to_dict(self) -> dict[str, object]:
        return {"video": self.video, "frame": self.frame, "t": self.t, "top5": list(self.top5),
                "names": list(self.names), "scores": list(self.scores) if self.scores is not None else None}


@dataclass(frozen=True)
class FrameResults(Event):
    """Frames' labels for the main process (the `results` output), a few batches a second."""

    results: tuple[FrameResult, ...]


@dataclass(frozen=True)
class LiveEvent(Event):
    """A live label event (stages.outputs.events) as the Python API's on_event gets it: `kind` is
    label (the smoothed label changed), result (live.events.results_hz) or clip; `data` is the
    event as events.jsonl has it."""

    kind: str
    stream: str
    data: dict[str, Any]

    @property
    def label(self) -> str | None:
        return self.data.get("label")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)

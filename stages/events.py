"""The domain's events, from stage processes to the job in the main process (pipeline.events
has the base and StageFailure). Frozen dataclasses: a job matches on the type, never on a string.

    sink    --Progress (a few times a second per stream), StreamDone (once per stream)--> job
    source  --SourceProblem (an input that failed or ended early)-------------------------> job
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

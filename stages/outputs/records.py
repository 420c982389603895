"""Per-frame label records: what the sink writes for every frame (JSONL) and feeds the smoother."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vidpipe.stages.descriptors import Result


@dataclass(frozen=True)
class FrameLabel:
    """The classification of one frame of one stream, ready to serialize.

    `timestamp_s` is the container's presentation time (not wall clock), `latency_ms` is end to
    end, capture/decode -> sink. `timings_ms` holds optional per-stage durations in ms.
    """

    stream: str
    index: int
    timestamp_s: float
    top5: tuple[int, ...]
    names: tuple[str, ...]
    scores: tuple[float, ...] | None
    latency_ms: float
    timings_ms: dict[str, float] = field(default_factory=dict)
    damaged: bool = False  # the decoder reported errors in this picture

    @property
    def top1(self) -> int:
        return self.top5[0]

    @classmethod
    def from_result(cls, result: Result, class_names: Sequence[str], t_sink: float) -> FrameLabel:
        """Builds the record the sink writes for `result` (class names in model order)."""
        ref = result.frame
        timings = {
            "preprocess": (result.t_preprocessed - ref.t_capture) * 1e3,
            "queue": (result.t_infer_start - result.t_preprocessed) * 1e3,
            "infer": (result.t_infer_done - result.t_infer_start) * 1e3,
            "sink": (t_sink - result.t_infer_done) * 1e3,
        }
        timings.update({k: v * 1e3 for k, v in result.timings.items()})  # backend breakdown, s -> ms
        return cls(
            stream=ref.stream,
            index=ref.seq,
            timestamp_s=ref.pts_s,
            top5=tuple(int(c) for c in result.top5),
            names=tuple(_name(class_names, c) for c in result.top5),
            scores=None if result.scores is None else tuple(float(s) for s in result.scores),
            latency_ms=(t_sink - ref.t_capture) * 1e3,
            timings_ms=timings,
            damaged=ref.damaged,
        )

    def to_json(self) -> dict[str, Any]:
        """One JSONL line. Floats are rounded: the files stay small and diffs stay readable."""
        out: dict[str, Any] = {
            "frame": self.index,
            "t": round(self.timestamp_s, 6),
            "top5": list(self.top5),
            "names": list(self.names),
            "scores": None if self.scores is None else [round(s, 5) for s in self.scores],
            "latency_ms": round(self.latency_ms, 3),
        }
        if self.damaged:  # optional key: only on frames the decoder reported errors in
            out["damaged"] = True
        if self.timings_ms:  # optional key: absent rather than empty
            out["timings_ms"] = {k: round(v, 3) for k, v in self.timings_ms.items()}
        return out


def _name(class_names: Sequence[str], class_id: int) -> str:
    # An out-of-range id (a backend with fewer labels) still gets a stable, visible name.
    return class_names[class_id] if 0 <= class_id < len(class_names) else f"class {class_id}"

"""What the Python API returns: small frozen dataclasses, each with `to_dict()`.

    FrameResult   one frame's labels (stages.events, also what live callbacks get)
    VideoResult   one input of a label or watch job: status, error, frames, segments, top labels
    JobSummary    the whole job: every VideoResult, the exit code; `to_pandas()` when pandas is there
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidpipe.stages.outputs.smoothing import Segment
from vidpipe.stages.outputs.summary import VideoSummary


@dataclass(frozen=True)
class VideoResult:
    """One input of the job, as its row of OUT/summary.csv says (the same columns, typed)."""

    video: str  # the output NAME (files OUT/NAME.*)
    input: str  # the input's path
    status: str  # done | failed | incomplete | pending
    error: str  # one line, "" when nothing went wrong
    frames: int
    duration_s: float | None
    fps: float | None  # the video's frame rate
    width: int | None
    height: int | None
    labeling_s: float
    labeling_fps: float | None
    top: tuple[tuple[str, float], ...]  # labels by share of the duration, best first
    segments: tuple[Segment, ...]  # runs of one smoothed label
    outputs: tuple[str, ...]  # files written into the output folder
    host: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "done" and not self.error

    @property
    def label(self) -> str | None:
        """The label that covers the most time."""
        return self.top[0][0] if self.top else None

    @classmethod
    def from_row(cls, row: VideoSummary, keep_outputs: bool = True) -> VideoResult:
        return cls(row.video, row.input, row.status, row.error, row.frames, row.duration_s, row.fps, row.width,
                   row.height, row.labeling_s, row.labeling_fps, tuple(tuple(t) for t in row.top),  # type: ignore[misc]
                   tuple(row.segments), tuple(row.outputs) if keep_outputs else (), row.host)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["top"] = [{"name": n, "share": s} for n, s in self.top]
        return d


@dataclass(frozen=True)
class JobSummary:
    """The end of a label or watch job."""

    videos: tuple[VideoResult, ...]
    exit_code: int  # 0 everything worked, 1 an input or stage failed, 130 interrupted
    out: Path | None  # the output folder (None: results were kept in memory only)
    dropped_results: int = 0  # frames not handed to the caller's loop (it fell behind); every frame is in the files

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def failed(self) -> tuple[VideoResult, ...]:
        return tuple(v for v in self.videos if v.status != "done" or v.error)

    def __getitem__(self, video: str) -> VideoResult:
        """The result of the video with output NAME `video`."""
        for v in self.videos:
            if v.video == video:
                return v
        raise KeyError(video)

    def to_dict(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "out": str(self.out) if self.out else None,
                "dropped_results": self.dropped_results, "videos": [v.to_dict() for v in self.videos]}

    def to_pandas(self) -> Any:
        """One row per video (the columns of summary.csv, with `top` and `segments` as lists);
        needs pandas, which vidpipe does not depend on."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("JobSummary.to_pandas() needs pandas: pip install pandas") from None
        rows = []
        for v in self.videos:
            row = v.to_dict()
            row["labeling_fps"] = v.labeling_fps
            row["label"] = v.label
            rows.append(row)
        return pd.DataFrame(rows)

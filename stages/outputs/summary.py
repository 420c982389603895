"""OUT/summary.csv and OUT/summary.json: one row per input of a labeling job.

    import pandas as pd
    videos = pd.read_csv("results/summary.csv")        # a whole folder job is one table

`VideoSummary` is what a row holds (stages.jobs.summary builds it from what is on disk: the job
manifest and each NAME.segments.json); `COLUMNS` documents every column, units included, and
is written into summary.json too, so the files explain themselves.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidpipe.stages.outputs.smoothing import Segment
from vidpipe.stages.outputs.writers import SEGMENT_UNITS, write_text_atomic

SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
TOP_LABELS = 3  # top labels in the CSV (top1..top3); the JSON has them all

COLUMNS: dict[str, str] = {
    "video": "the output NAME: the video's files are NAME.jsonl, NAME.segments.json/.csv, NAME.vtt, NAME.mp4",
    "input": "the input file's path (absolute)",
    "status": "done | failed (see error) | incomplete (cut short: outputs hold what was labeled) | pending (not run)",
    "error": "one line saying what went wrong; empty when nothing did",
    "duration_s": "seconds of video labeled: the end of the last segment (frames / fps); empty when unknown",
    "frames": "frames labeled (each exactly once)",
    "fps": "the video's frame rate, frames per second",
    "width": "frame width in pixels",
    "height": "frame height in pixels",
    "labeling_s": "wall-clock seconds the labeling took (first output made -> done)",
    "labeling_fps": "frames / labeling_s: how fast it was labeled",
    "segments": "number of label segments (runs of one smoothed top-1 label)",
    "top1..top3, top1_share..top3_share": "the labels that cover the most time, and their share of the "
                                           "video's duration (0..1); JSON: top_labels, all of them",
    "outputs": "the files written for this video, in the output folder (CSV: separated by ';')",
    "host": "the host that labeled it (a Ray job: the host and its Ray node)",
    "warning": "one line about something the outputs do differently from the input (e.g. an odd size "
               "padded by one pixel in the annotated video); empty when nothing",
}
SEGMENT_ENDS = f"segments (NAME.segments.json/.csv, NAME.vtt): {SEGMENT_UNITS}"


@dataclass
class VideoSummary:
    """One input of the job. `media`: what the report's <video> plays (folder-relative URL path:
    the annotated NAME.mp4, else the input); `track`: NAME.vtt if there is one; `thumbs`: one
    folder-relative JPEG path per segment ("" where none could be made)."""

    video: str
    input: str
    status: str
    error: str = ""
    duration_s: float | None = None
    frames: int = 0
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    labeling_s: float = 0.0
    top: list[tuple[str, float]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    media: str = ""
    track: str = ""
    thumbs: list[str] = field(default_factory=list)
    host: str = ""
    warning: str = ""

    @property
    def labeling_fps(self) -> float | None:
        return round(self.frames / self.labeling_s, 2) if self.labeling_s > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "video": self.video, "input": self.input, "status": self.status, "error": self.error,
            "duration_s": _round(self.duration_s, 6), "frames": self.frames, "fps": _round(self.fps, 6),
            "width": self.width, "height": self.height, "labeling_s": round(self.labeling_s, 3),
            "labeling_fps": self.labeling_fps, "segments": len(self.segments),
            "top_labels": [{"name": n, "share": round(s, 6)} for n, s in self.top],
            "outputs": list(self.outputs), "host": self.host, "warning": self.warning,
        }

    def csv_row(self) -> list[Any]:
        top = [cell for i in range(TOP_LABELS) for cell in
               ((self.top[i][0], f"{self.top[i][1]:.6f}") if i < len(self.top) else ("", ""))]
        return [self.video, self.input, self.status, self.error, _cell(self.duration_s), self.frames,
                _cell(self.fps), _cell(self.width), _cell(self.height), f"{self.labeling_s:.3f}",
                _cell(self.labeling_fps), len(self.segments), *top, ";".join(self.outputs), self.host, self.warning]


CSV_HEADER = ["video", "input", "status", "error", "duration_s", "frames", "fps", "width", "height", "labeling_s",
              "labeling_fps", "segments",
              *(f"top{i}{suffix}" for i in range(1, TOP_LABELS + 1) for suffix in ("", "_share")), "outputs", "host",
              "warning"]


def summary_csv(rows: Sequence[VideoSummary]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(row.csv_row() for row in rows)
    return buf.getvalue()


def summary_json(rows: Sequence[VideoSummary]) -> str:
    doc = {"version": 1, "columns": COLUMNS, "segment_ends": SEGMENT_ENDS, "videos": [r.to_json() for r in rows]}
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def write_summary(folder: Path, rows: Sequence[VideoSummary], names: Sequence[str]) -> None:
    """Writes those of summary.csv / summary.json that are in `names` (each .part, then renamed)."""
    if SUMMARY_CSV in names:
        write_text_atomic(folder / SUMMARY_CSV, summary_csv(rows))
    if SUMMARY_JSON in names:
        write_text_atomic(folder / SUMMARY_JSON, summary_json(rows))


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _cell(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(round(value, 6)) if isinstance(value, float) else str(value)

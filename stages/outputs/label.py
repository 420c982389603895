"""The outputs of one labeled video: NAME.jsonl, NAME.segments.json/.csv, NAME.vtt and NAME.mp4.

Frames arrive in order (the sink reorders). Each frame: a JSONL line, the temporal smoother and
segment builder, the overlay and the H.264 encoder. The overlay shows each frame's smoothed
label, which the centred smoother knows `lag` (window // 2) frames later: the video writes are
delayed by that much, holding copies of at most `lag` frames (memory: lag x frame size, e.g.
7 x 6 MB at 1080p), so frames still go out in order and every frame gets its own smoothed label.
Every writer writes NAME.part and renames on close; on abort what was written so far is
finalized (playable video, complete lines) and the segments file says the video was cut short.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.redact import printable
from stages.config import OutputSettings, PostprocessSettings
from stages.descriptors import LabelInfo, Result, StreamEnd, StreamStart
from stages.events import OutputSummary
from stages.outputs.overlay import draw_labels
from stages.outputs.records import FrameLabel
from stages.outputs.smoothing import LabelSmoother, SegmentBuilder, SmoothedLabel, summarize
from stages.outputs.vtt import vtt_document
from stages.outputs.writers import H264Writer, JsonlWriter, SegmentsWriter, write_text_atomic

FALLBACK_FPS = 25.0  # for containers that do not say their frame rate

# Every file a video's outputs may be published as: OUT/NAME + suffix (and + ".part" while written).
OUTPUT_SUFFIXES = (".jsonl", ".segments.json", ".segments.csv", ".vtt", ".mp4")


def output_names(name: str, out: OutputSettings) -> list[str]:
    """The files LabelOutputs publishes for stream `name` with these settings."""
    wanted = {".jsonl": out.jsonl, ".segments.json": out.segments, ".segments.csv": out.segments,
              ".vtt": out.segments, ".mp4": out.video}
    return [name + suffix for suffix in OUTPUT_SUFFIXES if wanted[suffix]]


class LabelOutputs:
    def __init__(self, start: StreamStart, labels: LabelInfo, out: OutputSettings, post: PostprocessSettings) -> None:
        base = Path(out.dir) / start.stream
        self.start = start
        self.names = labels.display_names()
        self.top = post.overlay_top
        self.base = base
        self.segments_enabled = out.segments
        fps = start.fps if start.fps > 0 else FALLBACK_FPS
        self.jsonl = JsonlWriter(Path(f"{base}.jsonl")) if out.jsonl else None
        self.smoother = LabelSmoother(post.smoothing_window)
        self.segments = SegmentBuilder(fps, post.min_segment_s)
        self.video = (
            H264Writer(Path(f"{base}.mp4"), start.width, start.height, fps, preset=out.video_preset, crf=out.video_crf)
            if out.video
            else None
        )
        self.held: deque[tuple[FrameLabel, np.ndarray]] = deque()  # frames waiting for their smoothed label
        self.frames = 0

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> None:
        label = FrameLabel.from_result(result, self.names, t_sink)
        if self.jsonl is not None:
            self.jsonl.write(label)
        if self.video is not None:
            self.held.append((label, frame.copy() if self.smoother.lag else frame))  # the slot is released next
        for smoothed in self.smoother.push(label):
            self._smoothed(smoothed)
        self.frames += 1

    def _smoothed(self, smoothed: SmoothedLabel) -> None:
        """A frame's smoothed label is known: into the segments, and the frame (with it drawn) into the video."""
        self.segments.add(smoothed)
        if self.video is None:
            return
        label, frame = self.held.popleft()
        assert label.index == smoothed.index, (label.index, smoothed.index)
        draw_labels(frame, label.names, label.scores, top=self.top, smoothed=(smoothed.name, smoothed.score),
                    time_s=label.timestamp_s)
        self.video.write(frame)

    def drop(self, result: Result) -> None:
        raise AssertionError("file sources never drop frames")

    def finish(self, end: StreamEnd | None) -> OutputSummary:
        abort = end is None
        error = "cut short: the pipeline stopped" if abort else end.error if end else ""
        for smoothed in self.smoother.flush():
            self._smoothed(smoothed)
        segments = self.segments.finish()
        summary = summarize(segments)
        try:
            if self.segments_enabled:
                meta = {
                    "name": self.start.stream,
                    "video": printable(self.start.uri),  # a name that is not UTF-8 cannot be written as JSON text
                    "fps": self.start.fps,
                    "width": self.start.width,
                    "height": self.start.height,
                    "frames": self.frames,
                    "error": error or None,
                }
                SegmentsWriter.write(
                    Path(f"{self.base}.segments.json"), Path(f"{self.base}.segments.csv"), segments, summary, meta
                )
                write_text_atomic(Path(f"{self.base}.vtt"), vtt_document(segments))
        finally:
            for writer in (self.jsonl, self.video):
                if writer is not None:
                    writer.close(abort=abort)
        return OutputSummary(tuple((s.name, s.share) for s in summary), len(segments))


class LabelOutputsFactory:
    """Picklable: made in the main process, called in the sink process."""

    def __init__(self, output: OutputSettings, postprocess: PostprocessSettings) -> None:
        self.output = output
        self.postprocess = postprocess

    def __call__(self, start: StreamStart, labels: LabelInfo) -> LabelOutputs:
        return LabelOutputs(start, labels, self.output, self.postprocess)

    def on_item(self, item: Any) -> None:
        pass

    def close(self) -> None:
        pass

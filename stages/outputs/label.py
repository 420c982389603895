"""The outputs of one labeled video: NAME.jsonl, NAME.segments.json/.csv, NAME.vtt and NAME.mp4.

Frames arrive in order (the sink reorders). Each frame: a JSONL line, the temporal smoother and
segment builder, and the annotated video (stages.outputs.annotate: overlay + H.264). The overlay
shows each frame's smoothed label, which the centred smoother knows `lag` (window // 2) frames
later: each frame waits that long for it (at most `lag` frames held, e.g. 7 x 6 MB at 1080p), so
frames still go out in order and every frame gets its own smoothed label.

With a lane (the graph's encoder processes, stages.outputs.encoder) the video is drawn and
encoded there: this process sends the frame slot and, later, its smoothed label; encoding, the
costly part, runs beside the sink on other cores. Without one, here, with the same code.
x264 threads: `output.video_threads`, 0 = chosen from the cores and the encoders (encoder_threads).

Every writer writes NAME.part and renames on close; on abort what was written so far is
finalized (playable video, complete lines) and the segments file says the video was cut short.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from vidpipe.pipeline.machine import usable_cores
from vidpipe.pipeline.redact import printable
from vidpipe.stages.config import OutputSettings, PostprocessSettings
from vidpipe.stages.descriptors import LabelInfo, Result, StreamEnd, StreamStart
from vidpipe.stages.events import OutputSummary
from vidpipe.stages.outputs.annotate import AnnotatedVideo, VideoSpec
from vidpipe.stages.outputs.encoder import VideoClose, VideoFrame, VideoLabel, VideoOpen
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import LabelSmoother, SegmentBuilder, SmoothedLabel, summarize
from vidpipe.stages.outputs.vtt import vtt_document
from vidpipe.stages.outputs.writers import JsonlWriter, SegmentsWriter, write_text_atomic
from vidpipe.stages.sink import Lane

FALLBACK_FPS = 25.0  # for containers that do not say their frame rate

# Every file a video's outputs may be published as: OUT/NAME + suffix (and + ".part" while written).
OUTPUT_SUFFIXES = (".jsonl", ".segments.json", ".segments.csv", ".vtt", ".mp4")


def output_names(name: str, out: OutputSettings) -> list[str]:
    """The files LabelOutputs publishes for stream `name` with these settings."""
    wanted = {".jsonl": out.jsonl, ".segments.json": out.segments, ".segments.csv": out.segments,
              ".vtt": out.segments, ".mp4": out.video}
    return [name + suffix for suffix in OUTPUT_SUFFIXES if wanted[suffix]]


def _slot_kept_by_sink() -> None:
    """In the sink, the frame's slot is the sink's to release: a held frame is only copied."""


def encoder_threads(out: OutputSettings, encoders: int) -> int:
    """x264 threads of each encoder process: `output.video_threads` when set; else 1, the least CPU
    per frame (bench: 640x360 veryfast, 2 cores: one thread 2.45 ms/frame and 480 fps in the job,
    x264's frame threads 2.74 ms and 435 fps: they only pay where cores are idle), as long as the
    encoders take at least half of the cores (decode, preprocess and the rest take about the
    other half); with fewer encoders than that (one file on a big host), frame threads over
    their share of the cores: cores // (2 x encoders)."""
    if out.video_threads:
        return out.video_threads
    return max(1, usable_cores() // (2 * max(encoders, 1)))


class LabelOutputs:
    def __init__(self, start: StreamStart, labels: LabelInfo, out: OutputSettings, post: PostprocessSettings,
                 lane: Lane | None = None, threads: int = 0) -> None:
        base = Path(out.dir) / start.stream
        self.start = start
        self.names = labels.display_names()
        self.base = base
        self.segments_enabled = out.segments
        fps = start.fps if start.fps > 0 else FALLBACK_FPS
        self.jsonl = JsonlWriter(Path(f"{base}.jsonl")) if out.jsonl else None
        self.smoother = LabelSmoother(post.smoothing_window)
        self.segments = SegmentBuilder(fps, post.min_segment_s)
        spec = VideoSpec(f"{base}.mp4", start.width, start.height, fps, out.video_preset, out.video_crf,
                         out.video_threads or threads, post.overlay_top)
        self.lane = lane if out.video else None
        self.video = AnnotatedVideo(spec) if out.video and lane is None else None  # here, without a lane
        if self.lane is not None:
            self.lane.send(VideoOpen(start.stream, start.uri, spec))
        self.frames = 0

    @property
    def held(self) -> deque[Any]:
        """Frames held here waiting for their smoothed label (none with a lane: the encoder holds them)."""
        return self.video.held if self.video is not None else deque()

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> bool:
        """True when the frame slot went down the lane (the encoder releases it)."""
        label = FrameLabel.from_result(result, self.names, t_sink)
        if self.jsonl is not None:
            self.jsonl.write(label)
        if self.lane is not None:
            self.lane.send(VideoFrame(result.frame, label))
        elif self.video is not None:
            self.video.frame(label, frame, _slot_kept_by_sink)
        for smoothed in self.smoother.push(label):
            self._smoothed(smoothed)
        if self.video is not None:
            self.video.detach()  # the sink releases the slot next
        self.frames += 1
        return self.lane is not None

    def _smoothed(self, smoothed: SmoothedLabel) -> None:
        """A frame's smoothed label is known: into the segments, and to the video (drawn, encoded)."""
        self.segments.add(smoothed)
        if self.lane is not None:
            self.lane.send(VideoLabel(self.start.stream, smoothed))
        elif self.video is not None:
            self.video.smoothed(smoothed)

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
            if self.jsonl is not None:
                self.jsonl.close(abort=abort)
            if self.lane is not None:
                self.lane.send(VideoClose(self.start.stream, abort))
                self.lane = None
            if self.video is not None:
                self.video.close(abort=abort)
        return OutputSummary(tuple((s.name, s.share) for s in summary), len(segments))


class LabelOutputsFactory:
    """Picklable: made in the main process, called in the sink process."""

    def __init__(self, output: OutputSettings, postprocess: PostprocessSettings, encoders: int = 0) -> None:
        self.output = output
        self.postprocess = postprocess
        self.threads = encoder_threads(output, encoders)

    def __call__(self, start: StreamStart, labels: LabelInfo, lane: Lane | None = None) -> LabelOutputs:
        return LabelOutputs(start, labels, self.output, self.postprocess, lane, self.threads)

    def on_item(self, item: Any) -> None:
        pass

    def close(self) -> None:
        pass

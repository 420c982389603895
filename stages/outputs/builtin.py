"""The built-in per-video outputs (stages.outputs.frame_outputs has the registry and the protocol).

    jsonl     NAME.jsonl: one line per frame                       output.jsonl
    segments  NAME.segments.json and .csv: the smoothed label runs  output.segments
    vtt       NAME.vtt: the segments as a WebVTT track             output.segments
    video     NAME.mp4: annotated H.264 (here or in an encoder)    output.video
    results   each frame's labels to the main process (the Python API's iteration)  output.report_frames
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sized
from dataclasses import replace
from typing import Any

import numpy as np

from vidpipe.pipeline.events import Event
from vidpipe.pipeline.redact import printable
from vidpipe.stages.descriptors import FrameRef
from vidpipe.stages.events import FrameResult, FrameResults
from vidpipe.stages.outputs.annotate import AnnotatedVideo, VideoSpec
from vidpipe.stages.outputs.encoder import VideoClose, VideoFrame, VideoLabel, VideoOpen
from vidpipe.stages.outputs.frame_outputs import OutputBase, OutputSpec, VideoContext, VideoEnd
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import SmoothedLabel
from vidpipe.stages.outputs.split import SplitVideo, splits
from vidpipe.stages.outputs.vtt import vtt_document
from vidpipe.stages.outputs.writers import JsonlWriter, SegmentsWriter, write_text_atomic

FALLBACK_FPS = 25.0  # for containers that do not say their frame rate


class _Jsonl(OutputBase):
    def __init__(self, video: VideoContext) -> None:
        self.writer = JsonlWriter(video.path(".jsonl"))

    def frame(self, label: FrameLabel, pixels: np.ndarray, ref: FrameRef) -> bool:
        self.writer.write(label)
        return False

    def finish(self, end: VideoEnd) -> None:
        self.writer.close(abort=end.abort)


class _Segments(OutputBase):
    def __init__(self, video: VideoContext) -> None:
        self.video = video

    def finish(self, end: VideoEnd) -> None:
        v = self.video
        meta = {
            "name": v.stream,
            "video": printable(v.uri),  # a name that is not UTF-8 cannot be written as JSON text
            "fps": v.fps,
            "width": v.width,
            "height": v.height,
            "frames": end.frames,
            "error": end.error or None,
        }
        SegmentsWriter.write(v.path(".segments.json"), v.path(".segments.csv"), end.segments, end.summary, meta)


class _Vtt(OutputBase):
    def __init__(self, video: VideoContext) -> None:
        self.path = video.path(".vtt")

    def finish(self, end: VideoEnd) -> None:
        write_text_atomic(self.path, vtt_document(end.segments))


def _slot_kept_by_sink() -> None:
    """In the sink, the frame's slot is the sink's to release: a held frame is only copied."""


class VideoOutput(OutputBase):
    """Drawn and encoded down the video's lane (an encoder process) when the graph has one, else
    here with the same code (stages.outputs.annotate); see stages.outputs.label."""

    def __init__(self, video: VideoContext) -> None:
        out = video.output
        fps = video.fps if video.fps > 0 else FALLBACK_FPS
        spec = VideoSpec(str(video.path(".mp4")), video.width, video.height, fps, out.video_preset, out.video_crf,
                         out.video_threads or video.threads, video.postprocess.overlay_top)
        self.stream = video.stream
        self.lane = video.lane
        self.fps, self.last_s = fps, float("-inf")  # frames are written at their own times, increasing
        self.here = AnnotatedVideo(spec) if video.lane is None else None
        self.split: SplitVideo | None = None  # one long video over several lanes (stages.outputs.split)
        lag = video.postprocess.smoothing_window // 2
        if splits(video.lane, video.frame_count, out.video_chunk_frames, lag):
            self.split = SplitVideo(video.stream, video.uri, spec, video.lane, out.video_chunk_frames,
                                    video.frame_count, lag)
            self.lane = None
        if self.lane is not None:
            self.lane.send(VideoOpen(video.stream, video.uri, spec))

    @property
    def done_lane(self) -> Any:
        """Where the stream's StreamDone goes (a split video's: where it is joined); None: its lane."""
        return self.split.done_lane if self.split is not None else None

    @property
    def held(self) -> Sized:
        """Frames held here waiting for their smoothed label (none with a lane: the encoder holds them)."""
        return self.here.held if self.here is not None else ()

    def frame(self, label: FrameLabel, pixels: np.ndarray, ref: FrameRef) -> bool:
        if label.timestamp_s <= self.last_s:  # a container without times: one frame after the last
            label = replace(label, timestamp_s=self.last_s + 1.0 / self.fps)
        self.last_s = label.timestamp_s
        if self.split is not None:
            self.split.frame(label, ref)
            return True
        if self.lane is not None:
            self.lane.send(VideoFrame(ref, label))
            return True  # the frame slot went down the lane: the encoder releases it
        assert self.here is not None
        self.here.frame(label, pixels, _slot_kept_by_sink)
        return False

    def smoothed(self, smoothed: SmoothedLabel) -> None:
        if self.split is not None:
            self.split.smoothed(smoothed)
        elif self.lane is not None:
            self.lane.send(VideoLabel(self.stream, smoothed))
        elif self.here is not None:
            self.here.smoothed(smoothed)

    def frame_done(self) -> None:
        if self.here is not None:
            self.here.detach()  # frames still held are copied: the sink releases the slot next

    def finish(self, end: VideoEnd) -> None:
        if self.split is not None:
            self.split.finish(end.abort)
        if self.lane is not None:
            self.lane.send(VideoClose(self.stream, end.abort))
            self.lane = None
        if self.here is not None:
            self.here.close(abort=end.abort)


class FrameReporter:
    """Frames' labels to the main process in batches: at most every FLUSH_S, or BATCH frames."""

    FLUSH_S = 0.1
    BATCH = 256

    def __init__(self, report: Callable[[Event], None]) -> None:
        self.report, self.batch, self.t_sent = report, list[FrameResult](), time.monotonic()

    def add(self, label: FrameLabel) -> None:
        self.batch.append(FrameResult(label.stream, label.index, label.timestamp_s, tuple(label.top5),
                                      tuple(label.names), tuple(label.scores) if label.scores is not None else None))
        if len(self.batch) >= self.BATCH or time.monotonic() - self.t_sent >= self.FLUSH_S:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            self.report(FrameResults(tuple(self.batch)))
            self.batch, self.t_sent = [], time.monotonic()


class _Results(OutputBase):
    def __init__(self, video: VideoContext) -> None:
        self.reporter = FrameReporter(video.report)

    def frame(self, label: FrameLabel, pixels: np.ndarray, ref: FrameRef) -> bool:
        self.reporter.add(label)
        return False

    def finish(self, end: VideoEnd) -> None:
        self.reporter.flush()


JSONL = OutputSpec("jsonl", "NAME.jsonl: one line per frame", (".jsonl",), _Jsonl, lambda out: out.jsonl, pixels=False)
SEGMENTS = OutputSpec("segments", "NAME.segments.json and .csv: the smoothed label runs",
                      (".segments.json", ".segments.csv"), _Segments, lambda out: out.segments, pixels=False)
VTT = OutputSpec("vtt", "NAME.vtt: the segments as a WebVTT track", (".vtt",), _Vtt, lambda out: out.segments,
                 pixels=False)
VIDEO = OutputSpec("video", "NAME.mp4: the annotated H.264 video", (".mp4",), VideoOutput, lambda out: out.video)
RESULTS = OutputSpec("results", "each frame's labels to the Python API", (), _Results, lambda out: out.report_frames,
                     pixels=False)

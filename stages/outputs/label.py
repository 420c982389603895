"""The outputs of one labeled video, composed from config (stages.outputs.frame_outputs): by
default NAME.jsonl, NAME.segments.json/.csv, NAME.vtt and NAME.mp4, plus any output a plug-in
registers and `output.extra` names.

Frames arrive in order (the sink reorders). Each frame goes to every output, then into the
temporal smoother; each smoothed label (known `lag` = window // 2 frames later) goes to every
output (the segments and the annotated video use them), and at the end every output gets the
segments and the summary. The overlay shows each frame's smoothed label: the video output holds
at most `lag` frames waiting for theirs (e.g. 7 x 6 MB at 1080p), so frames go out in order.

With a lane (the graph's encoder processes, stages.outputs.encoder) the video is drawn and
encoded there: this process sends the frame slot and, later, its smoothed label; encoding, the
costly part, runs beside the sink on other cores. Without one, here, with the same code.
x264 threads: `output.video_threads`, 0 = chosen from the cores and the encoders (encoder_threads).

Every writer writes NAME.part and renames on close; on abort what was written so far is
finalized (playable video, complete lines) and the segments file says the video was cut short.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from pathlib import Path
from typing import Any

import numpy as np

from vidpipe.pipeline.events import Event
from vidpipe.pipeline.machine import usable_cores
from vidpipe.stages.config import OutputSettings, PostprocessSettings
from vidpipe.stages.descriptors import LabelInfo, Result, StreamEnd, StreamStart
from vidpipe.stages.events import OutputSummary
from vidpipe.stages.outputs.builtin import FALLBACK_FPS, VideoOutput
from vidpipe.stages.outputs.frame_outputs import FrameOutput, VideoContext, VideoEnd, enabled_outputs, keeps_pixels
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import LabelSmoother, SegmentBuilder, SmoothedLabel, summarize
from vidpipe.stages.sink import Lane


def output_names(name: str, out: OutputSettings) -> list[str]:
    """The files LabelOutputs publishes for stream `name` with these settings."""
    return [name + suffix for spec in enabled_outputs(out) for suffix in spec.suffixes]


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


def _no_report(event: Event) -> None:
    """Outputs made outside a sink (tests) report to no one."""


class LabelOutputs:
    def __init__(self, start: StreamStart, labels: LabelInfo, out: OutputSettings, post: PostprocessSettings,
                 lane: Lane | None = None, threads: int = 0, report: Callable[[Event], None] = _no_report) -> None:
        self.names = labels.display_names()
        video = VideoContext(start.stream, start.uri, Path(out.dir), start.fps, start.width, start.height,
                             start.frame_count, self.names, out, post, report, lane if out.video else None, threads)
        self.smoother = LabelSmoother(post.smoothing_window)
        self.segments = SegmentBuilder(start.fps if start.fps > 0 else FALLBACK_FPS, post.min_segment_s)
        self.outputs: list[FrameOutput] = []
        try:
            for spec in enabled_outputs(out):
                self.outputs.append(spec.create(video))
        except BaseException:
            self._finish_all(VideoEnd(0, True, "cut short: its outputs could not be made", [], []))
            raise
        self.frames = 0

    @property
    def done_lane(self) -> Lane | None:
        """Where the sink sends the stream's StreamDone when not its lane (a split video's join)."""
        return next((o.done_lane for o in self.outputs if isinstance(o, VideoOutput)), None)

    @property
    def held(self) -> Sized:
        """Frames the outputs hold here, waiting for their smoothed label (bounded by the smoother's lag)."""
        return next((o.held for o in self.outputs if isinstance(o, VideoOutput)), ())

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> bool:
        """True when the frame slot was handed on (down the lane: the encoder releases it)."""
        label = FrameLabel.from_result(result, self.names, t_sink)
        handed_on = False
        for output in self.outputs:
            handed_on = bool(output.frame(label, frame, result.frame)) or handed_on
        for smoothed in self.smoother.push(label):
            self._smoothed(smoothed)
        for output in self.outputs:
            output.frame_done()
        self.frames += 1
        return handed_on

    def _smoothed(self, smoothed: SmoothedLabel) -> None:
        self.segments.add(smoothed)
        for output in self.outputs:
            output.smoothed(smoothed)

    def drop(self, result: Result) -> None:
        raise AssertionError("file sources never drop frames")

    def finish(self, end: StreamEnd | None) -> OutputSummary:
        abort = end is None
        error = "cut short: the pipeline stopped" if end is None else end.error
        for smoothed in self.smoother.flush():
            self._smoothed(smoothed)
        segments = self.segments.finish()
        summary = summarize(segments)
        self._finish_all(VideoEnd(self.frames, abort, error, segments, summary))
        return OutputSummary(tuple((s.name, s.share) for s in summary), len(segments))

    def _finish_all(self, end: VideoEnd) -> None:
        """Every output is finished, even when one fails (a full disk); the first error is raised."""
        first: BaseException | None = None
        for output in self.outputs:
            try:
                output.finish(end)
            except BaseException as exc:
                first = first or exc
        if first is not None:
            raise first


class LabelOutputsFactory:
    """Picklable: made in the main process, called in the sink process (which binds its report)."""

    def __init__(self, output: OutputSettings, postprocess: PostprocessSettings, encoders: int = 0) -> None:
        self.output = output
        self.postprocess = postprocess
        self.threads = encoder_threads(output, encoders)
        self.report: Callable[[Event], None] = _no_report
        self.keeps_pixels = keeps_pixels(output)  # the sink's cue (stages.sink)

    def bind(self, report: Callable[[Event], None]) -> None:
        self.report = report

    def __call__(self, start: StreamStart, labels: LabelInfo, lane: Lane | None = None) -> LabelOutputs:
        return LabelOutputs(start, labels, self.output, self.postprocess, lane, self.threads, self.report)

    def on_item(self, item: Any) -> None:
        pass

    def close(self) -> None:
        pass

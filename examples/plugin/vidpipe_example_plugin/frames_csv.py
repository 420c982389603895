"""Output `frames-csv`: OUT/NAME.frames.csv, one row per frame (frame, t, label, score).

Written as NAME.frames.csv.part and renamed when the video is complete, like vidpipe's own
outputs; the job manifest records it (the spec's suffixes), so `--resume` checks it too.
"""

from __future__ import annotations

import numpy as np

from vidpipe.stages.descriptors import FrameRef
from vidpipe.stages.outputs.frame_outputs import OutputBase, OutputSpec, VideoContext, VideoEnd
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.writers import CsvWriter


class FramesCsv(OutputBase):
    def __init__(self, video: VideoContext) -> None:
        self.writer = CsvWriter(video.path(".frames.csv"), ["frame", "t", "label", "score"])

    def frame(self, label: FrameLabel, pixels: np.ndarray, ref: FrameRef) -> bool:
        score = f"{label.scores[0]:.4f}" if label.scores else ""
        self.writer.write([label.index, f"{label.timestamp_s:.3f}", label.names[0], score])
        return False  # the frame's slot stays the sink's

    def finish(self, end: VideoEnd) -> None:
        self.writer.close(abort=end.abort)


SPEC = OutputSpec("frames-csv", "OUT/NAME.frames.csv: one row per frame", (".frames.csv",), FramesCsv)

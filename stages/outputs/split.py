"""The sink's side of a split video: one long video's annotated MP4 encoded in chunks of whole
GOPs by several encoder processes at once, then joined (stages.outputs.chunks).

    frame i            -> the lane of chunk i // N (chunk k opens on the least busy lane that has no
                          other chunk of this video open: an encoder holds one chunk of a stream)
    smoothed label i   -> the same lane; after the chunk's last frame's label: VideoClose
    end                -> VideoClose of what is open, VideoJoin to the last chunk's lane, which
                          then gets the StreamDone (`done_lane`): reported once the file is joined

A chunk stays open `lag` frames past its end (the labels come later), so N > lag keeps at most
two chunks of a video open and another lane free. Frames keep the input's times; a time that does
not increase (a container without timestamps) is made one frame later than the previous one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vidpipe.stages.descriptors import FrameRef
from vidpipe.stages.outputs.annotate import VideoSpec
from vidpipe.stages.outputs.chunks import ChunkOf, chunk_keyint, chunk_length, sweep
from vidpipe.stages.outputs.encoder import VideoClose, VideoFrame, VideoJoin, VideoLabel, VideoOpen
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import SmoothedLabel
from vidpipe.stages.sink import Lane


def splits(lane: Lane | None, frame_count: int, chunk_frames: int, lag: int) -> bool:
    """Whether a video is split: several lanes, and at least two chunks longer than the lag."""
    if lane is None or len(lane.peers) < 2 or chunk_frames <= 0:
        return False
    length = chunk_length(chunk_frames)
    return length > lag and frame_count >= 2 * length


class SplitVideo:
    """See the module docstring. `lane`: the lane the sink gave the stream (not bound to it)."""

    def __init__(self, stream: str, uri: str, spec: VideoSpec, lane: Lane, chunk_frames: int) -> None:
        self.stream, self.uri = stream, uri
        self.final = Path(spec.path)
        sweep(self.final)  # an earlier run's chunks (a crash before its join)
        self.length = chunk_length(chunk_frames)
        self.spec = replace(spec, keyint=chunk_keyint(chunk_frames))
        self.home = lane
        lane.streams -= 1  # the sink counts the stream on its lane: its chunks are counted instead
        self.open: dict[int, Lane] = {}
        self.started = 0
        self.done_lane: Lane | None = None  # the last chunk's: it joins, then reports the StreamDone
        self.last_s = float("-inf")

    def frame(self, label: FrameLabel, ref: FrameRef) -> None:
        k = label.index // self.length
        if k not in self.open:
            self._start(k)
        if label.timestamp_s <= self.last_s:
            label = replace(label, timestamp_s=self.last_s + 1.0 / self.spec.fps)
        self.last_s = label.timestamp_s
        self.open[k].send(VideoFrame(ref, label))

    def _start(self, k: int) -> None:
        holding = [id(lane) for lane in self.open.values()]
        lane = min((p for p in self.home.peers if id(p) not in holding), key=Lane.load)
        lane.streams += 1
        self.open[k], self.started, self.done_lane = lane, k + 1, lane
        lane.send(VideoOpen(self.stream, self.uri, replace(self.spec, chunk=ChunkOf(str(self.final), k))))

    def smoothed(self, smoothed: SmoothedLabel) -> None:
        k = smoothed.index // self.length
        self.open[k].send(VideoLabel(self.stream, smoothed))
        if smoothed.index == (k + 1) * self.length - 1:
            self._close(k, abort=False)

    def _close(self, k: int, abort: bool) -> None:
        lane = self.open.pop(k)
        lane.streams -= 1
        lane.send(VideoClose(self.stream, abort))

    def finish(self, abort: bool) -> None:
        for k in sorted(self.open):
            self._close(k, abort)
        if self.done_lane is not None:
            self.done_lane.send(VideoJoin(self.stream, self.uri, str(self.final), self.started, abort))
        self.home.streams += 1  # taken off again by the sink

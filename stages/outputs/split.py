"""The sink's side of a split video: one long video's annotated MP4 encoded in chunks of whole
GOPs by several encoder processes at once, then joined (stages.outputs.chunks).

    frame i            -> the lane of chunk i // N (chunk k opens on the least busy lane that has no
                          other chunk of this video open: an encoder holds one chunk of a stream)
    smoothed label i   -> the same lane; after the chunk's last frame's label: VideoClose
    end                -> VideoClose of what is open, VideoJoin to chunk 0's lane (it has joined the
                          chunks done so far), which then gets the StreamDone (`done_lane`):
                          reported once the file is joined

A chunk stays open `lag` frames past its end (the labels come later), so N > lag keeps at most
two chunks of a video open and another lane free. Frames keep the input's times (VideoOutput makes
them increase).

The end of a video is cut finer (chunk_starts): when its last frame is decoded, the encoders still
hold the frames in flight (hundreds: the frame ring), and whole N-frame chunks would leave them to
one lane while the others idle; pieces of about N / (2 x lanes) frames spread them over every lane.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import replace
from pathlib import Path

from vidpipe.stages.descriptors import FrameRef
from vidpipe.stages.outputs.annotate import VideoSpec
from vidpipe.stages.outputs.chunks import ChunkOf, chunk_keyint, chunk_length, sweep
from vidpipe.stages.outputs.encoder import VideoClose, VideoFrame, VideoJoin, VideoLabel, VideoOpen
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import SmoothedLabel
from vidpipe.stages.sink import Lane

MIN_PIECE = 24  # frames: the shortest piece of a video's end (chunk_starts)


def splits(lane: Lane | None, frame_count: int, chunk_frames: int, lag: int) -> bool:
    """Whether a video is split: several lanes, and at least two chunks longer than the lag."""
    if lane is None or len(lane.peers) < 2 or chunk_frames <= 0:
        return False
    length = chunk_length(chunk_frames)
    return length > lag and frame_count >= 2 * length


def chunk_starts(frame_count: int, chunk_frames: int, lanes: int, lag: int) -> list[int]:
    """The first frame of each chunk: whole chunks, then the last two chunks' worth in pieces of
    about a chunk / (2 x lanes) (see the module docstring), each longer than the lag and at least
    MIN_PIECE frames (a fresh x264 per piece: its IDR frame costs several P frames)."""
    length = chunk_length(chunk_frames)
    tail = min(frame_count, 2 * length + frame_count % length)
    piece = min(length, max(lag + 1, MIN_PIECE, length // (2 * lanes)))
    pieces = max(1, tail // piece)  # of equal length: none left much shorter than the others
    return [*range(0, frame_count - tail, length), *(frame_count - tail + j * tail // pieces for j in range(pieces))]


class SplitVideo:
    """See the module docstring. `lane`: the lane the sink gave the stream (not bound to it)."""

    def __init__(self, stream: str, uri: str, spec: VideoSpec, lane: Lane, chunk_frames: int, frame_count: int,
                 lag: int) -> None:
        self.stream, self.uri = stream, uri
        self.final = Path(spec.path)
        sweep(self.final)  # an earlier run's chunks (a crash before its join)
        self.starts = chunk_starts(frame_count, chunk_frames, len(lane.peers), lag)
        self.length, self.planned = chunk_length(chunk_frames), frame_count
        self.spec = replace(spec, keyint=chunk_keyint(chunk_frames))
        self.home = lane
        lane.streams -= 1  # the sink counts the stream on its lane: its chunks are counted instead
        self.open: dict[int, Lane] = {}
        self.started = 0
        self.done_lane: Lane | None = None  # chunk 0's: it joins, then reports the StreamDone

    def chunk_of(self, index: int) -> int:
        while index >= max(self.planned, self.starts[-1] + self.length):  # more frames than the container said
            self.starts.append(max(self.planned, self.starts[-1] + self.length))
        return bisect_right(self.starts, index) - 1

    def frame(self, label: FrameLabel, ref: FrameRef) -> None:
        k = self.chunk_of(label.index)
        if k not in self.open:
            self._start(k)
        self.open[k].send(VideoFrame(ref, label))

    def _start(self, k: int) -> None:
        holding = [id(lane) for lane in self.open.values()]
        lane = min((p for p in self.home.peers if id(p) not in holding), key=Lane.load)
        lane.streams += 1
        self.open[k], self.started = lane, k + 1
        if k == 0:
            self.done_lane = lane  # it joins (stages.outputs.chunks.Joiner)
        lane.send(VideoOpen(self.stream, self.uri, replace(self.spec, chunk=ChunkOf(str(self.final), k))))

    def smoothed(self, smoothed: SmoothedLabel) -> None:
        k = self.chunk_of(smoothed.index)
        self.open[k].send(VideoLabel(self.stream, smoothed))
        if k + 1 < len(self.starts) and smoothed.index == self.starts[k + 1] - 1:
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

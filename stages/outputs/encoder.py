"""Encoder processes: the annotated videos of label jobs, drawn and encoded beside the sink.

    sink (reorder, JSONL, smoothing, segments) --lane i--> encoder i: overlay + H.264 of the
    streams assigned to it, each in order (one process per stream: order is the lane's FIFO)

The sink assigns each stream to one lane (the least busy) when the stream starts; what travels
is small: VideoOpen, then per frame a VideoFrame (its FrameRef: the encoder owns that frame slot
from here) and, `lag` frames later, its VideoLabel (the smoothed label), then VideoClose and the
stream's StreamDone, which the encoder reports once the video is published (so a StreamDone
still means every output of the stream is complete). Frames whose label is still to come when an
inbox batch ends are copied and their slots released (AnnotatedVideo.detach): slots are never
held across batches. x264 runs with the threads VideoSpec says (set by the job, see
stages.outputs.label).

One long video may be split (stages.outputs.split): its chunks come to several lanes as videos of
their own (VideoOpen with `spec.chunk`; one open chunk per stream and lane). Chunk 0's lane joins
them (stages.outputs.chunks.Joiner): between inbox batches it appends each chunk done, and on the
VideoJoin it waits for the last ones, before the StreamDone that follows is reported.

A video that cannot be written (a full disk) fails its stream only: one SourceProblem, its
remaining frames released, the StreamDone carries the error. May block: in encoding and on the
inbox. On abort what is queued already is still encoded (for at most DRAIN_ON_ABORT_S), frames
whose smoothed label will not come get their raw label, and every open video is finalized as cut
short, so files stay playable (a split video: the complete chunks from the first are joined).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import av

from vidpipe.pipeline.channels import Channel, Stop
from vidpipe.pipeline.errors import one_line
from vidpipe.pipeline.redact import printable
from vidpipe.pipeline.stage import Stage
from vidpipe.stages.descriptors import FrameRef
from vidpipe.stages.events import SourceProblem, StreamDone
from vidpipe.stages.outputs.annotate import AnnotatedVideo, VideoSpec
from vidpipe.stages.outputs.chunks import WAKE_S, ChunkBoard, ChunkFailed, ChunkOf, Joiner, failed_marker, first_failure
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import SmoothedLabel
from vidpipe.stages.sink import LaneParams

log = logging.getLogger(__name__)

DRAIN_ON_ABORT_S = 1.5  # the supervisor waits 3 s for stages to leave after an abort


@dataclass(frozen=True)
class VideoOpen:
    stream: str
    uri: str  # for messages
    spec: VideoSpec


@dataclass(frozen=True)
class VideoFrame:
    ref: FrameRef  # the slot is the encoder's from here on
    label: FrameLabel


@dataclass(frozen=True)
class VideoLabel:
    stream: str
    smoothed: SmoothedLabel


@dataclass(frozen=True)
class VideoClose:
    stream: str
    abort: bool  # cut short: finalize what was written


@dataclass(frozen=True)
class VideoJoin:
    """A split video's chunks are all sent (stages.outputs.chunks): join them, then its StreamDone."""

    stream: str
    uri: str
    final: str
    chunks: int
    abort: bool  # cut short: join the complete chunks from the first


@dataclass
class _Open:
    uri: str
    video: AnnotatedVideo | None
    failed: str = ""
    chunk: ChunkOf | None = None  # a chunk of a split video (one open per stream and lane)


class EncodeStage(Stage[LaneParams]):
    """See the module docstring."""

    def open(self) -> None:
        self.videos: dict[str, _Open] = {}
        self.board = ChunkBoard(self.params.chunk_done, self.aborted)
        self.joiners: dict[str, Joiner] = {}  # by final path: the split videos whose chunk 0 was here

    def handle_batch(self, items: Sequence[Any]) -> None:
        for item in items:
            self.handle(item)
        for entry in self.videos.values():
            if entry.video is not None:
                entry.video.detach()
        self._advance_joins()

    def poll_s(self) -> float | None:
        return WAKE_S if self.joiners else None  # chunks other lanes finish are joined meanwhile

    def on_idle(self) -> None:
        self._advance_joins()

    def _advance_joins(self) -> None:
        """The split videos this lane joins take the chunks finished since (a stat each when none is)."""
        for joiner in self.joiners.values():
            joiner.advance()

    def handle(self, item: Any) -> None:
        if isinstance(item, VideoFrame):
            self._frame(item)
        elif isinstance(item, VideoLabel):
            self._guarded(item.stream, lambda v: v.smoothed(item.smoothed))
        elif isinstance(item, VideoOpen):
            self._open(item)
        elif isinstance(item, VideoClose):
            self._guarded(item.stream, lambda v: v.close(item.abort))
            entry = self.videos.get(item.stream)
            if entry is not None:
                entry.video = None
                if entry.chunk is not None:
                    self._chunk_closed(self.videos.pop(item.stream), item.abort)
        elif isinstance(item, VideoJoin):
            self._join(item)
        elif isinstance(item, StreamDone):
            entry = self.videos.pop(item.stream, None)
            failed = entry.failed if entry is not None else ""
            self.report(replace(item, error=item.error or failed) if failed else item)

    def _open(self, item: VideoOpen) -> None:
        entry = self.videos[item.stream] = _Open(item.uri, None, chunk=item.spec.chunk)
        if item.spec.chunk is not None and item.spec.chunk.index == 0:  # this lane joins the video
            final = item.spec.chunk.final
            self.joiners[final] = Joiner(Path(final), item.uri, self.board)
        try:
            entry.video = AnnotatedVideo(item.spec)
        except OSError as exc:
            self._fail(item.stream, entry, exc)

    def _frame(self, item: VideoFrame) -> None:
        ref, frames = item.ref, self.params.frames
        entry = self.videos.get(ref.stream)
        if entry is None or entry.video is None:
            frames.release(ref.slot)
            return
        entry.video.frame(item.label, frames.view(ref.slot, (ref.height, ref.width, 3)),
                          partial(frames.release, ref.slot))

    def _chunk_closed(self, entry: _Open, abort: bool) -> None:
        """A chunk is published (or failed): the joiner may go on; cut short, this lane may join."""
        assert entry.chunk is not None
        final = Path(entry.chunk.final)
        self.board.finished()
        if abort:
            self._cut_short(entry.uri, final)

    @staticmethod
    def _first_failed_chunk(chunk: ChunkOf) -> bool:
        """Marks the chunk failed (for the joiner); True if it is its video's first failure."""
        final = Path(chunk.final)
        with contextlib.suppress(OSError):
            failed_marker(final, chunk.index).touch()
        return first_failure(final)

    def _join(self, item: VideoJoin) -> None:
        final = Path(item.final)
        if item.abort:
            self._cut_short(item.uri, final, item.chunks)
            return
        joiner = self.joiners.pop(item.final, None) or Joiner(final, item.uri, self.board)
        if failed := self._joined(item.uri, final, lambda: joiner.finish(item.chunks)):
            self.videos[item.stream] = _Open(item.uri, None, failed)

    def _cut_short(self, uri: str, final: Path, chunks: int | None = None) -> None:
        """Abort: this lane's joiner of the video publishes what is complete; with none here, the
        first encoder to claim the join does (ChunkBoard.join_cut_short)."""
        joiner = self.joiners.pop(str(final), None)
        join = (lambda: joiner.cut_short(chunks)) if joiner is not None else \
            (lambda: self.board.join_cut_short(final, chunks))
        self._joined(uri, final, join)

    def _joined(self, uri: str, final: Path, join: Any) -> str:
        """Runs a join; a failure is this video's only (one line, a SourceProblem), returned."""
        try:
            join()
        except ChunkFailed as exc:  # its encoder said why already
            return f"{printable(uri)}: {one_line(exc)}"
        except (OSError, av.FFmpegError) as exc:
            message = f"{printable(uri)}: cannot join the chunks of {printable(final.name)} ({one_line(exc)})"
            self.report(SourceProblem(final.stem, uri, message))
            return message
        return ""

    def _guarded(self, stream: str, action: Any) -> None:
        entry = self.videos.get(stream)
        if entry is None or entry.video is None:
            return
        try:
            action(entry.video)
        except OSError as exc:
            self._fail(stream, entry, exc)

    def _drain(self, inbox: Channel, deadline: float) -> None:
        """Abort: what the sink sent already is still encoded (time-bounded), so a video cut short
        has the frames its JSONL has."""
        while time.monotonic() < deadline:
            try:
                item = inbox.get_nowait()
            except (queue.Empty, OSError, EOFError, ValueError):
                return
            if not isinstance(item, Stop):
                self.handle(item)

    def _fail(self, stream: str, entry: _Open, exc: OSError) -> None:
        """This stream's video fails (one line), the others go on."""
        path = exc.filename or (entry.video.spec.path if entry.video is not None else "")
        entry.failed = f"{printable(entry.uri)}: cannot write {printable(str(path))} ({exc.strerror or one_line(exc)})"
        if entry.chunk is None or self._first_failed_chunk(entry.chunk):  # one line per video
            self.report(SourceProblem(stream, entry.uri, entry.failed))
        video, entry.video = entry.video, None
        if video is not None:
            video.release_all()
            with contextlib.suppress(OSError):
                video.close(abort=True)

    def close(self) -> None:
        if self.inbox is not None and self.ctx.abort.is_set():
            self._drain(self.inbox, time.monotonic() + DRAIN_ON_ABORT_S)
        for entry in getattr(self, "videos", {}).values():
            if entry.video is not None:
                video, entry.video = entry.video, None
                try:
                    video.close(abort=True)
                except OSError as exc:
                    log.error("%s: %s", printable(entry.uri), one_line(exc))
                if entry.chunk is not None:
                    self._chunk_closed(entry, abort=True)
        for final, joiner in list(getattr(self, "joiners", {}).items()):
            self._cut_short(joiner.uri, Path(final))

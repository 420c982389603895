"""Sink: reorders results per stream, then hands each frame, in order, to its stream's outputs.

    inbox --Result/StreamStart/StreamEnd/LabelInfo--> per-stream reorder buffer (by seq)
          --> outputs.write(result, frame pixels) --> frame slot released (or handed on)
    other items (live source status, queue depths) --> the outputs factory's on_item()
    lanes (optional) --> output processes after the sink (e.g. encoders), one lane per stream

The sink knows nothing of files or web pages: a job hands it an OutputsFactory (stages.outputs)
that makes each stream's StreamOutputs. With lanes (channels to processes in the graph's last
tiers, GraphShape.encoders), each stream is given the least busy lane when it starts: what its
outputs send there leaves with the sink's next flush, in order, and `write()` returning True
means the frame slot went with it (that process releases it). The stream's StreamDone then goes
down its lane too, to be reported by that process once it has finished the stream (a long video
split over several lanes, stages.outputs.split, names the lane for it: its outputs' `done_lane`).

Results arrive out of order (several preprocess workers, batches); a label is always drawn on
the frame it was computed for because frames leave the reorder buffer strictly by sequence
number. A stream is finished when its StreamEnd has come and every frame before it was written.
May block: on the inbox, and in the outputs (encoding). On abort (and at STOP) every stream
still open is finished as cut short, then the factory is closed, so files stay playable.

A file decoded in parts by several decode workers (stages.parts) sends a PartEnd per part: its
StreamEnd is put together here once every part has ended (and its problem reported here). A
factory whose outputs keep no pixels (`keeps_pixels` False: labels only) has each frame slot
released as soon as its result arrives, so results waiting to be written in order (later parts of
a file) hold no frame slot.

An output that cannot be written (a full disk, a folder gone read-only) fails its stream only:
one line naming the file (a SourceProblem for the job), its outputs finished with that error in
them, its remaining frames released unwritten; every other stream goes on.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from vidpipe.pipeline.channels import Batch, Channel
from vidpipe.pipeline.errors import one_line
from vidpipe.pipeline.redact import printable
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.stage import Stage
from vidpipe.stages.descriptors import LabelInfo, QueueDepths, Result, StreamEnd, StreamStart
from vidpipe.stages.events import OutputSummary, Progress, SourceProblem, SourceWarning, StreamDone
from vidpipe.stages.parts import PartEnd, combine

log = logging.getLogger(__name__)


class StreamOutputs(Protocol):
    """What the sink drives for one stream (files: stages.outputs.label; live: stages.outputs.live)."""

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> bool | None:
        """True: the frame's slot was handed on (down the stream's lane); else the sink releases it."""

    def drop(self, result: Result) -> None:
        """A live frame dropped for staleness before preprocessing."""

    def finish(self, end: StreamEnd | None) -> OutputSummary:
        """Close every output; returns a summary for the final table. None: cut short."""
        ...


class OutputsFactory(Protocol):
    """Makes each stream's outputs in the sink process; sees the items that are not frames
    (e.g. live source status) and is closed when the sink ends. A factory whose outputs report
    events to the job (a frame's labels for the Python API) also has `bind(report)`, which the
    sink calls once, at its start, with its own `report`."""

    def __call__(self, start: StreamStart, labels: LabelInfo, lane: Lane | None) -> StreamOutputs:
        """`lane`: the stream's way to an output process (None: the graph has none)."""
        ...

    def on_item(self, item: Any) -> None: ...

    # `keeps_pixels` (optional, True if absent): whether any output reads a frame's pixels

    def close(self) -> None: ...


class Lane:
    """The sink's end of one channel to an output process; items leave with the sink's flush."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.streams = 0  # open streams (or chunks of a split video) assigned to it
        self.peers: list[Lane] = [self]  # every lane of the sink, this one included
        self._pending: list[Any] = []

    def load(self) -> tuple[int, int]:
        """How busy it is, for the least busy lane: open streams, then what waits in its queue."""
        return self.streams, len(self._pending) + max(self.channel.depth(), 0)

    def send(self, item: Any) -> None:
        self._pending.append(item)

    def flush(self, timeout: float | None = None) -> None:
        """Send what is pending as one queue item; `timeout`: give up (drop it) after that long."""
        if self._pending:
            items, self._pending = self._pending, []
            if timeout is None:
                self.channel.put_many(items)
            else:
                self.channel.try_put(Batch(items) if len(items) > 1 else items[0], timeout)


@dataclass(frozen=True)
class LaneParams:
    """What a process at the end of a lane gets: the frame ring (it releases the slots sent to it),
    and a Condition the lanes share to wake each other (the chunks of a split video)."""

    frames: SlotRing
    chunk_done: Any = None


@dataclass
class _Stream:
    start: StreamStart | None = None
    end: StreamEnd | None = None
    heap: list[tuple[int, Result]] = field(default_factory=list)
    next_seq: int = 0
    outputs: StreamOutputs | None = None
    lane: Lane | None = None
    written: int = 0
    dropped: int = 0
    t_first: float = 0.0
    t_report: float = 0.0
    failed: str = ""  # one line: its outputs could not be written
    parts: list[PartEnd] = field(default_factory=list)  # a file decoded in parts: those ended


@dataclass(frozen=True)
class SinkParams:
    frames: SlotRing
    outputs: OutputsFactory
    watched: tuple[Channel, ...] = ()  # queues whose depth goes to the outputs (live metrics)
    lanes: tuple[Channel, ...] = ()  # to output processes after the sink (see the module docstring)
    progress_s: float = 0.25  # Progress events per stream at most this often


class SinkStage(Stage[SinkParams]):
    """Results and markers in, files and pages out; see the module docstring."""

    restartable: ClassVar[bool] = False  # a crash fails the job (a file's outputs cannot go on)

    def open(self) -> None:
        bind = getattr(self.params.outputs, "bind", None)
        if bind is not None:  # outputs that report events to the job (OutputsFactory.bind)
            bind(self.report)
        self.labels: LabelInfo | None = None
        self.streams: dict[str, _Stream] = {}
        self.t_depths = 0.0
        self.lanes = [Lane(channel) for channel in self.params.lanes]
        for lane in self.lanes:
            lane.peers = self.lanes
        self.pixels = bool(getattr(self.params.outputs, "keeps_pixels", True))
        self.no_pixels = np.empty((0, 0, 3), np.uint8)  # what outputs that read none are given

    def handle_batch(self, items: Sequence[Any]) -> None:
        for item in items:
            self.handle(item)
        self._report_depths()

    def flush(self) -> None:
        for lane in getattr(self, "lanes", ()):
            lane.flush()
        super().flush()

    def close(self) -> None:
        try:
            for name in list(getattr(self, "streams", {})):
                self._finish(name, cut_short=True)
            if not self.aborted():
                self.flush()
            for lane in getattr(self, "lanes", ()) if self.aborted() else ():
                lane.flush(timeout=0.2)  # best effort: the encoder still writes what reaches it
        finally:
            self.params.outputs.close()

    def handle(self, item: Any) -> None:
        if isinstance(item, LabelInfo):
            self.labels = self.labels or item
            for stream in list(self.streams.values()):
                self._advance(stream)
            return
        if not isinstance(item, Result | StreamStart | StreamEnd | PartEnd):
            self.params.outputs.on_item(item)
            return
        stream = self.streams.setdefault(item.stream if not isinstance(item, Result) else item.frame.stream, _Stream())
        if isinstance(item, StreamStart):
            stream.start = item
        elif isinstance(item, StreamEnd):
            stream.end = item
        elif isinstance(item, PartEnd):
            stream.parts.append(item)
        elif isinstance(item, Result):
            if not self.pixels:
                self.params.frames.release(item.frame.slot)  # see the module docstring
            heapq.heappush(stream.heap, (item.frame.seq, item))
        self._advance(stream)

    def _parts_ended(self, s: _Stream, start: StreamStart) -> None:
        """Every part of a file decoded in parts has ended: its StreamEnd, its problem reported."""
        whole = combine(s.parts)
        s.end, s.parts = whole.end, []
        if whole.end.error:
            self.report(SourceProblem(start.stream, start.uri, f"{printable(start.uri)}: {whole.end.error}"))
        elif whole.warning:
            self.report(SourceWarning(start.stream, start.uri, whole.warning))

    def _advance(self, s: _Stream) -> None:
        if s.start is None or self.labels is None:
            return  # results wait until the stream's outputs can be made
        if s.parts and len(s.parts) == s.parts[0].parts:
            self._parts_ended(s, s.start)
        if s.outputs is None and not s.failed:
            s.t_first = time.monotonic()
            if self.lanes and s.lane is None:
                s.lane = min(self.lanes, key=Lane.load)
                s.lane.streams += 1
            try:
                s.outputs = self.params.outputs(s.start, self.labels, s.lane)
            except OSError as exc:
                self._fail_outputs(s, exc)
        while s.heap and s.heap[0][0] == s.next_seq:
            _, result = heapq.heappop(s.heap)
            self._write(s, result)
            s.next_seq += 1
        self._report_progress(s)
        if s.end is not None and s.next_seq >= s.end.frames:
            self._finish(s.start.stream, cut_short=False)

    def _write(self, s: _Stream, result: Result) -> None:
        ref = result.frame
        frames = self.params.frames
        handed_on = False
        try:
            if s.outputs is None:  # failed: its frames are only released
                return
            if ref.dropped:
                s.dropped += 1
                s.outputs.drop(result)
            else:
                view = frames.view(ref.slot, (ref.height, ref.width, 3)) if self.pixels else self.no_pixels
                handed_on = bool(s.outputs.write(result, view, time.time()))
                s.written += 1
        except OSError as exc:
            self._fail_outputs(s, exc)
        finally:
            if not handed_on and self.pixels:
                frames.release(ref.slot)

    def _fail_outputs(self, s: _Stream, exc: OSError) -> None:
        """See the module docstring: this stream fails, the others go on."""
        assert s.start is not None
        what = f"cannot write {printable(str(exc.filename))}" if exc.filename else "cannot write its outputs"
        s.failed = f"{printable(s.start.uri)}: {what} ({exc.strerror or one_line(exc)})"
        self.report(SourceProblem(s.start.stream, s.start.uri, s.failed))
        outputs, s.outputs = s.outputs, None
        if outputs is not None:
            # What was written is finalized with the error in it (segments.json, the manifest);
            # if nothing more can be written there, the writers remove their .part files.
            with contextlib.suppress(OSError):
                outputs.finish(StreamEnd(s.start.stream, s.written, s.failed))

    def _report_depths(self) -> None:
        now = time.monotonic()
        if self.params.watched and now - self.t_depths >= 1.0:
            self.t_depths = now
            self.params.outputs.on_item(QueueDepths({ch.name: ch.depth() for ch in self.params.watched}))

    def _report_progress(self, s: _Stream, force: bool = False) -> None:
        now = time.monotonic()
        if s.start is None or (not force and now - s.t_report < self.params.progress_s):
            return
        s.t_report = now
        elapsed = max(now - s.t_first, 1e-9)
        self.report(Progress(s.start.stream, s.next_seq, s.start.frame_count, s.next_seq / elapsed, s.dropped))

    def _finish(self, name: str, cut_short: bool) -> None:
        s = self.streams.pop(name)
        for _, result in s.heap if self.pixels else ():  # frames that can no longer be written in order
            self.params.frames.release(result.frame.slot)
        s.heap.clear()
        if s.start is None:
            return
        self._report_progress(s, force=True)
        summary = OutputSummary()
        if s.outputs is not None:
            try:
                summary = s.outputs.finish(None if cut_short else s.end)
            except OSError as exc:
                self._fail_outputs(s, exc)
        error = s.failed or (s.end.error if s.end else "") or ("cut short: the pipeline stopped" if cut_short else "")
        done = StreamDone(name, s.start.uri, s.written, s.dropped, time.monotonic() - s.t_first, error, summary)
        if s.lane is not None:
            s.lane.streams -= 1
        # a split video's StreamDone goes where its chunks are joined (stages.outputs.chunks)
        lane = getattr(s.outputs, "done_lane", None) or s.lane
        if lane is not None and not self.aborted():
            lane.send(done)  # reported there, after what the stream sent down the lane
        else:
            self.report(done)

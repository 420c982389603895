"""The sink of live jobs: SinkStage, except that a frame lost upstream never holds its stream back.

A live stage that crashed and was restarted (pipeline.recovery) loses the frames it held; their
sequence numbers never reach the sink, and SinkStage, which writes strictly in order, would wait
for them for ever while every later frame of that stream piles up in its reorder buffer. Here a
gap older than GAP_TIMEOUT_S is skipped: the missing frames are counted as `lost` drops (the
outputs factory gets a FramesLost item) and the stream goes on from the next frame it has.
A frame that turns up after its gap was skipped is released and counted too, and a stream whose
last frames were lost still finishes when its StreamEnd has come.

A live stream's outputs that cannot be written (a full disk) are opened again every
`live.output_retry_s`, not given up for good as a file job's are: a camera keeps labeling (the page,
the events) and its files resume once there is room (a new recording file; JSONL appended).

The sink itself restarts after a crash (a kill -9 included) as the other live stages do. What the
dead sink knew is gone with it: the StreamStarts it had consumed, the infer processes' LabelInfo
(each sends it once), its metrics. The job keeps, from the sink's own events, what a successor
needs (SinkMemory, main process) and hands it to the new sink (SinkResume):

    dead sink --LabelsSeen, Progress (frames written, in order)--> job: SinkMemory
    job --SinkResume(labels, stream -> (uri, written), restarts so far)--> new sink (at its start)

The new sink takes up each such stream at the first Result it gets of it (with no StreamStart,
the frame descriptor gives the size and the resume the uri; a source restarted meanwhile sends
its StreamStart again, its numbers going on): its outputs are opened again (JSONL appended, a new
recording file) and it goes on from that frame. The frames between what the dead sink last
reported written and that frame are counted `lost` (so are the few it wrote after its last
report, progress_s at most). The restarts go into the new metrics, the sink's own included.
A stream that ended while no sink ran is only reported done.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.recovery import StageRestarted
from vidpipe.stages.config import LiveSettings
from vidpipe.stages.descriptors import LabelInfo, StreamStart
from vidpipe.stages.events import Progress, StreamDone
from vidpipe.stages.sink import SinkParams, SinkStage

log = logging.getLogger(__name__)

GAP_TIMEOUT_S = 1.0  # live frames are out of order for milliseconds; a second means lost


@dataclass(frozen=True)
class FramesLost:
    """Frames of `stream` that never reached the sink (a crashed stage held them)."""

    stream: str
    count: int


@dataclass(frozen=True)
class LabelsSeen(Event):
    """The sink got its first LabelInfo: the job keeps it for a restarted sink."""

    labels: LabelInfo


@dataclass(frozen=True)
class SinkResume:
    """What a sink started after a crash is told of its predecessor (see the module docstring)."""

    labels: LabelInfo | None
    streams: dict[str, tuple[str, int]]  # stream -> (masked uri, frames the dead sink reported written)
    restarts: tuple[StageRestarted, ...] = ()  # every restart so far, the sink's own included


@dataclass
class SinkMemory:
    """Main process: what the sink's events tell, for the next sink (`resume`)."""

    labels: LabelInfo | None = None
    written: dict[str, int] = field(default_factory=dict)
    restarts: list[StageRestarted] = field(default_factory=list)

    def on_event(self, event: Event) -> None:
        if isinstance(event, LabelsSeen):
            self.labels = self.labels or event.labels
        elif isinstance(event, Progress):
            self.written[event.stream] = event.done
        elif isinstance(event, StreamDone):
            self.written.pop(event.stream, None)
        elif isinstance(event, StageRestarted):
            self.restarts.append(event)

    def resume(self, uris: dict[str, str]) -> SinkResume:
        """For a new sink; `uris`: the streams that run (stream -> masked uri)."""
        streams = {name: (uri, self.written.get(name, 0)) for name, uri in uris.items()}
        return SinkResume(self.labels, streams, tuple(self.restarts))


class LiveSinkStage(SinkStage):
    """See the module docstring. May block: as SinkStage. `resume`: started after a crash."""

    restartable: ClassVar[bool] = True

    def __init__(self, params: SinkParams, inbox: Channel | None = None, outbox: Channel | None = None,
                 resume: SinkResume | None = None) -> None:
        super().__init__(params, inbox, outbox)
        self.resume = resume

    def open(self) -> None:
        super().open()
        self.gap_since: dict[str, float] = {}  # stream -> when its oldest waiting frame found a gap
        self.retry_at: dict[str, float] = {}  # stream -> when to open its failed outputs again
        live = getattr(self.params.outputs, "live", None)  # the live outputs factory's LiveSettings
        self.retry_s = float(getattr(live, "output_retry_s", LiveSettings.output_retry_s))
        self.orphans: dict[str, tuple[str, int]] = {}  # streams a dead sink began: (uri, written)
        if self.resume is not None:
            self.labels, self.orphans = self.resume.labels, dict(self.resume.streams)
            for restart in self.resume.restarts:  # counted again in this sink's metrics
                self.params.outputs.on_item(restart)
            log.info("sink restarted: %d stream(s) go on from their next frame", len(self.orphans))

    def handle(self, item: Any) -> None:
        if isinstance(item, LabelInfo) and self.labels is None:
            self.report(LabelsSeen(item))
        super().handle(item)

    def handle_batch(self, items: Sequence[Any]) -> None:
        super().handle_batch(items)
        self._adopt()
        self._skip_gaps()
        self._retry_outputs()

    def _adopt(self) -> None:
        """A stream the dead sink began, whose StreamStart went with it, is made from its first frame."""
        if not self.orphans:
            return
        for name, s in list(self.streams.items()):
            if s.start is not None or name not in self.orphans:
                continue
            if s.heap:
                ref = s.heap[0][1].frame
                s.start = StreamStart(name, self.orphans[name][0], ref.width, ref.height, 0.0, 0, live=True)
                self._advance(s)
            elif s.end is not None:  # it ended while no sink ran: nothing is left to write
                uri, _ = self.orphans.pop(name)
                del self.streams[name]
                self.report(StreamDone(name, uri, 0, 0, 0.0, s.end.error))

    def _advance(self, s: Any) -> None:
        if s.outputs is None and s.start is not None and s.start.stream in self.orphans:
            # (a restarted source sends its StreamStart again, its frame numbers going on)
            if not s.heap and s.end is None:
                return  # its first frame tells where it goes on
            _, written = self.orphans.pop(s.start.stream)
            s.next_seq = s.heap[0][0] if s.heap else s.end.frames
            if s.next_seq > written:  # what the dead sink held, or had not reported written
                self.params.outputs.on_item(FramesLost(s.start.stream, s.next_seq - written))
        super()._advance(s)

    def poll_s(self) -> float | None:
        return GAP_TIMEOUT_S / 2 if self.gap_since or self.retry_at else None

    def on_idle(self) -> None:
        self._skip_gaps()
        self._retry_outputs()

    def _fail_outputs(self, s: Any, exc: OSError) -> None:
        super()._fail_outputs(s, exc)
        if s.end is None:
            self.retry_at[s.start.stream] = time.monotonic() + self.retry_s

    def _retry_outputs(self) -> None:
        now = time.monotonic()
        for name, when in list(self.retry_at.items()):
            s = self.streams.get(name)
            if s is None or s.end is not None:
                del self.retry_at[name]
            elif now >= when:
                del self.retry_at[name]
                problem, s.failed = s.failed, ""  # _advance opens its outputs again (or fails again)
                self._advance(s)
                if s.outputs is not None:
                    log.info("%s: writing outputs again (after: %s)", name, problem)

    def _skip_gaps(self) -> None:
        now = time.monotonic()
        for name, s in list(self.streams.items()):
            if s.start is None:
                continue  # its outputs are not made yet: no order to keep
            late = 0
            while s.heap and s.heap[0][0] < s.next_seq:  # came after its gap was skipped
                _, result = heapq.heappop(s.heap)
                self.params.frames.release(result.frame.slot)
                late += 1
            # the next frame there is: the oldest waiting, or the end of a stream that has ended
            target = s.heap[0][0] if s.heap else (s.end.frames if s.end is not None else s.next_seq)
            if target <= s.next_seq:
                self.gap_since.pop(name, None)
            elif now - self.gap_since.setdefault(name, now) >= GAP_TIMEOUT_S:
                late += target - s.next_seq
                s.next_seq = target
                self.gap_since.pop(name, None)
                self._advance(s)  # (finishes the stream when its end was the target)
            if late:
                self.params.outputs.on_item(FramesLost(name, late))

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
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vidpipe.stages.config import LiveSettings
from vidpipe.stages.sink import SinkStage

log = logging.getLogger(__name__)

GAP_TIMEOUT_S = 1.0  # live frames are out of order for milliseconds; a second means lost


@dataclass(frozen=True)
class FramesLost:
    """Frames of `stream` that never reached the sink (a crashed stage held them)."""

    stream: str
    count: int


class LiveSinkStage(SinkStage):
    """See the module docstring. May block: as SinkStage."""

    def open(self) -> None:
        super().open()
        self.gap_since: dict[str, float] = {}  # stream -> when its oldest waiting frame found a gap
        self.retry_at: dict[str, float] = {}  # stream -> when to open its failed outputs again
        live = getattr(self.params.outputs, "live", None)  # the live outputs factory's LiveSettings
        self.retry_s = float(getattr(live, "output_retry_s", LiveSettings.output_retry_s))

    def handle_batch(self, items: Sequence[Any]) -> None:
        super().handle_batch(items)
        self._skip_gaps()
        self._retry_outputs()

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

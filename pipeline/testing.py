"""Run one stage in this process, from a list of items, and collect what it emits: a stage test
in ten lines (as Bytewax's testing.py does with TestingSource / TestingSink).

    got = run_inline(Doubler, DoublerParams(), [1, 2, 3])
    assert got.items == [2, 4, 6] and got.events == []

The inbox holds the items (each its own queue item unless given as `batches`) and then STOP; the
outbox records every queue item the stage sent (`got.batches`) and the items in order
(`got.items`). `stop_sources=True` starts the run as after Ctrl-C. No process, no pickling: a
failing stage raises its exception here, with its traceback.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vidpipe.pipeline.channels import STOP, Channel
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.flags import SharedFlag
from vidpipe.pipeline.stage import Stage, StageContext

P = TypeVar("P")


class ListChannel(Channel):
    """An in-process Channel over a deque: what the stage sees as its inbox or outbox."""

    def __init__(self, name: str, batches: Sequence[Sequence[Any]] = ()) -> None:  # no super(): no mp queue
        self.name = name
        self.maxsize = 1 << 30
        self.queue: deque[list[Any]] = deque(list(b) for b in batches)
        self.sent: list[list[Any]] = []

    def aborted(self) -> bool:
        return False

    def put(self, item: Any) -> None:
        self.sent.append([item])

    def put_many(self, items: Sequence[Any]) -> None:
        if items:
            self.sent.append(list(items))

    def try_put(self, item: Any, timeout: float) -> bool:
        self.put(item)
        return True

    def get_many(self, timeout: float | None = None) -> list[Any]:
        if not self.queue:
            raise queue.Empty  # as a real channel after `timeout`: nothing more will come
        return self.queue.popleft()

    def get(self, timeout: float | None = None) -> Any:
        items = self.get_many(timeout)
        if len(items) > 1:
            self.queue.appendleft(items[1:])
        return items[0]

    def get_nowait(self) -> Any:
        return self.get(0)

    def depth(self) -> int:
        return len(self.queue)

    def abandon(self) -> None:
        pass

    def close(self) -> None:
        pass


class _EventList(list[Any]):
    def put(self, item: Any) -> None:
        self.append(item)

    def close(self) -> None:
        pass

    def join_thread(self) -> None:
        pass


@dataclass
class InlineRun:
    batches: list[list[Any]]  # what the stage sent, one entry per queue item
    events: list[Event] = field(default_factory=list)

    @property
    def items(self) -> list[Any]:
        return [item for batch in self.batches for item in batch]


def run_inline(
    stage_type: type[Stage[P]],
    params: P,
    items: Sequence[Any] | None = None,
    *,
    batches: Sequence[Sequence[Any]] | None = None,
    stop_sources: bool = False,
    name: str = "stage",
) -> InlineRun:
    """Run `stage_type(params)` to its end in this process; see the module docstring.
    `items` and `batches` are None for a source stage (no inbox)."""
    if items is not None:
        batches = [[item] for item in items]
    inbox = None if batches is None else ListChannel("inbox", [*batches, [STOP]])
    outbox = ListChannel("outbox")
    mp = multiprocessing.get_context("spawn")
    abort, stop = SharedFlag(mp), SharedFlag(mp)
    if stop_sources:
        stop.set()
    events = _EventList()
    stage = stage_type(params, inbox, outbox)
    stage.run(StageContext(name, abort, stop, events))
    return InlineRun(outbox.sent, [event for _stage, event in events])

"""Bounded queues of small descriptors between stage processes.

A put blocks while the queue is full (back-pressure: the `block` policy, lossless), but wakes
every `poll_s` to notice an abort so no process hangs on a dead neighbour. Lossy policies for
live sources happen before a frame gets a slot (stages.sources.live keeps only the newest frame),
so queues themselves never drop.

Every queue item costs a pickle, a lock, a pipe write, a wake-up of the queue's feeder thread and
of the consumer: tens of microseconds of CPU, per hop, on a 2-core machine that decodes at
~2500 fps. A producer that has several items at hand sends them with `put_many` as ONE queue item
(a `Batch`); `get` hands them out one by one, in order, and `get_many` returns them together so
a stage can pass a batch on as a batch. Items put one by one (live sources) stay single: no
latency is added. `depth()` counts queue items, so a Batch counts once.
"""

from __future__ import annotations

import os
import queue
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any

from vidpipe.pipeline.errors import VidpipeError
from vidpipe.pipeline.flags import Flag
from vidpipe.pipeline.watchdog import beat


@dataclass(frozen=True)
class Stop:
    """End of work for the one consumer that takes it."""


STOP = Stop()


class Aborted(VidpipeError):
    """The graph is being torn down; the stage should return at once."""


class Batch(list[Any]):
    """Several items travelling as one queue item (see put_many); never seen by stages."""


class Channel:
    def __init__(self, ctx: BaseContext, name: str, maxsize: int, abort: Flag, poll_s: float = 0.2) -> None:
        if maxsize < 1:
            raise ValueError(f"channel {name}: maxsize must be >= 1")
        self.name = name
        self.maxsize = maxsize
        self._q = ctx.Queue(maxsize)
        self._abort = abort
        self._poll_s = poll_s
        self._owner_pid = os.getpid()
        self._unpacked: deque[Any] = deque()  # rest of a Batch taken by this consumer process

    def aborted(self) -> bool:
        """True once the graph aborts, or when the supervisor that made this channel is gone
        (kill -9): an orphaned stage must not block forever. Every poll of a wait calls it: it
        is also the stage's sign of life (pipeline.watchdog)."""
        beat()
        if self._abort.is_set():
            return True
        return os.getpid() != self._owner_pid and os.getppid() != self._owner_pid

    def put(self, item: Any) -> None:
        while True:
            try:
                self._q.put(item, timeout=self._poll_s)
                return
            except queue.Full:
                if self.aborted():
                    raise Aborted(f"{self.name}: aborted while full") from None

    def put_many(self, items: Sequence[Any]) -> None:
        """Put `items`, in order, as one queue item (blocks like put); nothing to do if empty."""
        if len(items) == 1:
            self.put(items[0])
        elif items:
            self.put(Batch(items))

    def try_put(self, item: Any, timeout: float) -> bool:
        """Put unless the queue stays full for `timeout` seconds."""
        try:
            self._q.put(item, timeout=timeout)
            return True
        except queue.Full:
            return False

    def get(self, timeout: float | None = None) -> Any:
        """Next item; raises queue.Empty after `timeout` (None: wait until an item or abort)."""
        if not self._unpacked:
            self._unpack(self._get(timeout))
        return self._unpacked.popleft()

    def get_many(self, timeout: float | None = None) -> list[Any]:
        """The next items that were put together (one put_many), or the next single item."""
        if not self._unpacked:
            self._unpack(self._get(timeout))
        items = list(self._unpacked)
        self._unpacked.clear()
        return items

    def _unpack(self, item: Any) -> None:
        if isinstance(item, Batch):
            self._unpacked.extend(item)
        else:
            self._unpacked.append(item)

    def _get(self, timeout: float | None) -> Any:
        waited = 0.0
        while True:
            step = self._poll_s if timeout is None else min(self._poll_s, timeout - waited)
            try:
                return self._q.get(timeout=max(step, 0.0))
            except queue.Empty:
                if self.aborted():
                    raise Aborted(f"{self.name}: aborted") from None
                waited += step
                if timeout is not None and waited >= timeout:
                    raise

    def get_nowait(self) -> Any:
        if not self._unpacked:
            self._unpack(self._q.get_nowait())
        return self._unpacked.popleft()

    def depth(self) -> int:
        try:
            return self._q.qsize()
        except NotImplementedError:  # macOS
            return -1

    def abandon(self) -> None:
        """Do not wait at exit to flush buffered items (the consumer may be gone)."""
        self._q.cancel_join_thread()

    def close(self) -> None:
        self._q.close()


def drain(channel: Channel, on_item: Callable[[Any], None]) -> None:
    """Hand every item already queued to `on_item` (used to free slots during teardown)."""
    while True:
        try:
            on_item(channel.get_nowait())
        except (queue.Empty, OSError, EOFError, ValueError):
            return

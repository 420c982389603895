"""Tiny stages for testing the runtime without video: a list source, a worker, a file sink.

Pixels go through a real SlotRing: the source writes each number into a slot, the worker reads
it back from shared memory. Each is a Stage subclass with its own parameter dataclass, as the
real stages are; they pickle under spawn.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidpipe.pipeline.events import Event
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.stage import Stage


@dataclass(frozen=True)
class Item:
    seq: int
    slot: int


@dataclass(frozen=True)
class Count(Event):
    """The sink's progress: items received so far."""

    n: int


@dataclass(frozen=True)
class SourceParams:
    values: list[int]
    ring: SlotRing
    endless: bool = False


class ListSource(Stage[SourceParams]):
    def produce(self) -> None:
        p = self.params
        seq = 0
        while p.endless or seq < len(p.values):
            if self.stopping:
                break
            slot = self.acquire(p.ring)
            p.ring.view(slot, (1,), np.int64)[0] = p.values[seq % len(p.values)]
            self.send(Item(seq, slot))
            seq += 1
        self.send(("end", seq))


@dataclass(frozen=True)
class WorkerParams:
    ring: SlotRing
    fail_at: int = -1
    kill_at: int = -1


class Worker(Stage[WorkerParams]):
    """Item -> (seq, 2 * value); anything else is passed on by the base."""

    accepts = (Item,)

    def handle(self, item: Item) -> None:
        p = self.params
        if item.seq == p.fail_at:
            raise ValueError(f"bad item {item.seq}")
        if item.seq == p.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        value = int(p.ring.view(item.slot, (1,), np.int64)[0])
        p.ring.release(item.slot)
        self.emit((item.seq, value * 2))


@dataclass(frozen=True)
class FileSinkParams:
    path: str


class FileSink(Stage[FileSinkParams]):
    """Writes what it got, in the order it got it, as JSON on STOP (or abort): close() runs always."""

    def open(self) -> None:
        self.got: list[Any] = []

    def handle(self, item: Any) -> None:
        self.got.append(item)
        self.report(Count(len(self.got)))

    def close(self) -> None:
        Path(self.params.path).write_text(json.dumps(self.got))

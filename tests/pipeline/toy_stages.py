"""Tiny stages for testing the runtime without video: a list source, a worker, a file sink.

Top-level functions so they pickle under spawn. Pixels go through a real SlotRing: the source
writes each number into a slot, the worker reads it back from shared memory.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.channels import Channel, Stop
from pipeline.shm import SlotRing
from pipeline.stage import StageContext


@dataclass(frozen=True)
class Item:
    seq: int
    slot: int


def list_source(ctx: StageContext, values: list[int], ring: SlotRing, out: Channel, endless: bool = False) -> None:
    seq = 0
    while endless or seq < len(values):
        if ctx.stop_sources.is_set():
            break
        slot = ring.acquire_or_abort(out.aborted)
        ring.view(slot, (1,), np.int64)[0] = values[seq % len(values)]
        out.put(Item(seq, slot))
        seq += 1
    out.put(("end", seq))


def worker(
    ctx: StageContext, ring: SlotRing, inbox: Channel, out: Channel, fail_at: int = -1, kill_at: int = -1
) -> None:
    while True:
        item: Any = inbox.get()
        if isinstance(item, Stop):
            return
        if isinstance(item, Item):
            if item.seq == fail_at:
                raise ValueError(f"bad item {item.seq}")
            if item.seq == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            value = int(ring.view(item.slot, (1,), np.int64)[0])
            ring.release(item.slot)
            item = (item.seq, value * 2)
        out.put(item)


def file_sink(ctx: StageContext, inbox: Channel, path: str) -> None:
    """Writes what it got, in the order it got it, as JSON on STOP (or abort)."""
    got: list[Any] = []
    try:
        while True:
            item = inbox.get()
            if isinstance(item, Stop):
                return
            got.append(item)
            ctx.report("progress", n=len(got))
    finally:
        Path(path).write_text(json.dumps(got))

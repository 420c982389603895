"""Memory of the emulated card: buffer objects (BOs) with a host mirror and a card-side copy.

`pynq.allocate(shape, dtype, target=ol.bank0)` runs pynq's own allocation path
(`XrtMemory.allocate` -> `_xrt_allocate`), which calls the device's `allocate_bo`, `map_bo` and
`get_device_address` and wraps the host mirror in a `PynqBuffer`. `sync_to_device()` /
`sync_from_device()` are pynq's `PynqBuffer.flush` / `invalidate`, which call the device's
`flush` / `invalidate` with the BO, the byte offset of the (possibly sliced) view and its size.
`freebuffer()` returns the BO through pynq's buffer-cache hook (`return_to.return_pointer`).

Both copies are plain numpy bytes: the host mirror is what the PynqBuffer views; the card
copy is what the emulated kernel reads and writes. Only a sync moves bytes between them, so a
missing sync shows up as stale data, as on the card. Every call is recorded in a `CallLog`.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pynq.pl_server.xrt_device import XrtMemory

PAGE = 4096  # XRT places BOs on page boundaries


@dataclass(frozen=True)
class Call:
    """One thing the card was asked to do. `t` is time.perf_counter() when it happened."""

    t: float
    op: str  # download, allocate_bo, free_bo, flush, invalidate, start, cu_start, cu_done, cu_error
    bo: int | None = None
    mem: str = ""
    offset: int = 0
    size: int = 0
    detail: str = ""


class CallLog:
    """Thread-safe, append-only record of what the device did (tests assert on it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def add(self, op: str, **fields: Any) -> Call:
        call = Call(time.perf_counter(), op, **fields)
        with self._lock:
            self._calls.append(call)
        return call

    def calls(self, *ops: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if not ops or c.op in ops]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


@dataclass(eq=False)
class EmulatedBO:
    """A buffer object: `size` bytes at `address` in memory `mem`."""

    handle: int
    mem: str
    address: int
    size: int
    host: np.ndarray
    card: np.ndarray
    freed: bool = False
    owner: Callable[[], Any] | None = None  # weakref to the PynqBuffer wrapping `host`
    synced: list[tuple[int, int]] = field(default_factory=list)  # byte ranges ever synced to the card

    def mark_synced(self, start: int, end: int) -> None:
        merged: list[tuple[int, int]] = []
        for a, b in sorted([*self.synced, (start, end)]):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self.synced = merged

    def synced_covers(self, start: int, end: int) -> bool:
        return any(a <= start and end <= b for a, b in self.synced)


class BankAllocator:
    """First-fit placement of BOs in one memory bank, page aligned."""

    def __init__(self, tag: str, base: int, size: int) -> None:
        self.tag, self.base, self.size = tag, base, size
        self.live: dict[int, int] = {}  # address -> size

    def place(self, size: int) -> int:
        cursor = self.base
        for addr in sorted(self.live):
            if addr - cursor >= size:
                break
            cursor = max(cursor, addr + _pages(self.live[addr]))
        if cursor + size > self.base + self.size:
            used = sum(_pages(s) for s in self.live.values())
            raise RuntimeError(
                f"BO allocation failed: {size} bytes do not fit in {self.tag} ({self.size - used} of {self.size} free)"
            )
        self.live[cursor] = size
        return cursor

    def release(self, address: int) -> None:
        self.live.pop(address, None)


def _pages(size: int) -> int:
    return -(-size // PAGE) * PAGE


class EmulatedMemory(XrtMemory):
    """A bank of the emulated card; pynq's XrtMemory with the BO-returning hook added."""

    def allocate(self, shape: Any, dtype: Any, **kwargs: Any) -> Any:
        # cache= makes pynq's _xrt_allocate set buf.pointer/return_to, so freebuffer() hands
        # the BO back to the device instead of munmap-ing (there is no XRT mapping here).
        buf = super().allocate(shape, dtype, cache=self.device.bo_return, **kwargs)
        bo: EmulatedBO = buf.pointer[0]
        bo.owner = weakref.ref(buf)
        return buf

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EmulatedMemory) and self.device is other.device and self.idx == other.idx

    def __hash__(self) -> int:
        return hash((id(self.device), self.idx))

    def __repr__(self) -> str:
        return f"EmulatedMemory({self.desc['tag']}, device={self.device.tag})"


class BoReturn:
    """pynq's `return_to` hook: PynqBuffer.freebuffer() calls return_pointer((bo, buf, address))."""

    def __init__(self, free_bo: Callable[[EmulatedBO], None]) -> None:
        self._free_bo = free_bo

    def return_pointer(self, pointer: tuple[EmulatedBO, Any, int]) -> None:
        bo = pointer[0]
        self._free_bo(bo)
        owner = bo.owner() if bo.owner else None
        if owner is not None:
            # pynq 3.1.2's freebuffer() falls through to libc.munmap (defined only on a PYNQ
            # board) when called again (e.g. from __del__); marking it freed makes that a no-op.
            owner.freed = True

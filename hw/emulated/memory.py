"""Memory of the emulated card: buffer objects (BOs) with host pages and a card-side copy.

`pynq.allocate(shape, dtype, target=ol.bank0)` runs pynq 3.0.1's own path unchanged:
`XrtMemory.allocate` -> `_xrt_allocate`, which calls the device's `allocate_bo`, `map_bo` and
`get_device_address` and wraps the mapping in a `PynqBuffer`. `sync_to_device()` /
`sync_from_device()` are pynq's `PynqBuffer.flush` / `invalidate`: they call the device's
`flush` / `invalidate` with the BO, the byte offset of the (possibly sliced) view and its size.
`freebuffer()` is pynq's too: `libc.munmap` of the mapping, then `xrt.xclFreeBO(handle, bo)`.

As with XRT, a BO's host pages are shared memory (a memfd) that `map_bo` maps with mmap, once
per call, so pynq's munmap releases exactly the mapping it got. The device keeps a mapping of
its own (`EmulatedBO.view`) to sync through; the card copy is separate numpy memory that only
a sync or the kernel touches, so a missing sync shows up as stale data, as on the card.

xclFreeBO is the one XRT call pynq makes outside the device's methods (PynqBuffer.freebuffer,
and ExecBo's finaliser): `install_free_hook` routes it to the emulated device when the BO is an
`EmulatedBO` and to libxrt otherwise. Every device operation is recorded in a `CallLog`.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pynq._3rdparty import xrt

PAGE = 4096  # XRT places BOs on page boundaries
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_MAP_FAILED = ctypes.c_void_p(-1).value


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
    """A buffer object: `size` bytes at `address` in memory `mem` ("" for an exec BO, which
    lives in host memory). pynq holds it where XRT would give it an integer handle."""

    handle: int
    mem: str
    address: int
    size: int
    fd: int  # the memfd holding the BO's host pages
    view: mmap.mmap  # the device's own mapping of them
    card: np.ndarray | None  # the card-side copy (None: exec BO)
    release: Callable[[EmulatedBO], None]  # the device's free_bo
    freed: bool = False
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

    def host(self, offset: int, size: int) -> np.ndarray:
        """The host pages [offset, offset+size) as bytes (use it in an expression: a view held
        on to would keep `view` from closing)."""
        return np.frombuffer(self.view, np.uint8, size, offset)

    def unmap(self) -> None:
        os.close(self.fd)
        with contextlib.suppress(BufferError):  # someone still holds a view: it goes when they let go
            self.view.close()


def host_pages(size: int, name: str) -> tuple[int, mmap.mmap]:
    """`size` bytes of shared memory (a memfd) and the device's mapping of them."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        return fd, mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        raise


def map_host(bo: EmulatedBO) -> int:
    """A new mapping of the BO's host pages, as xclMapBO makes; pynq munmaps it on free."""
    ptr = _libc.mmap(None, bo.size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, bo.fd, 0)
    if ptr is None or ptr == _MAP_FAILED:
        err = ctypes.get_errno()
        raise RuntimeError(f"Failed to map BO {bo.handle}: {os.strerror(err)}")
    return int(ptr)


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
                f"Allocate failed: {size} bytes do not fit in {self.tag} ({self.size - used} of {self.size} free)"
            )
        self.live[cursor] = size
        return cursor

    def release(self, address: int) -> None:
        self.live.pop(address, None)


def _pages(size: int) -> int:
    return -(-size // PAGE) * PAGE


def install_free_hook() -> None:
    """Route pynq's `xrt.xclFreeBO(handle, bo)` to the emulated device for its BOs (once)."""
    current = xrt.xclFreeBO
    if getattr(current, "vidpipe_emulated", False):
        return

    def xclFreeBO(handle: Any, bo: Any) -> Any:
        if isinstance(bo, EmulatedBO):
            bo.release(bo)
            return None
        return current(handle, bo)

    xclFreeBO.vidpipe_emulated = True  # type: ignore[attr-defined]
    xrt.xclFreeBO = xclFreeBO

"""Shared-memory slot rings: where pixels live while descriptors travel on queues.

    producer: slot = ring.acquire()  ->  ring.view(slot, shape)[:] = pixels  ->  queue.put(ref)
    consumer: ref = queue.get()      ->  read ring.view(ref.slot, shape)     ->  ring.release(slot)

One segment holds `slots` fixed-size slots. The free list is a stack in shared memory guarded by a
lock, with a semaphore counting free slots, so any process may acquire or release any slot (slots
come back out of order: frames dropped for staleness, several preprocess workers...).

Ownership follows `multiprocessing.shared_memory`: the creator unlinks once, everyone closes.
A ring pickles by segment name (only while spawning a process, like its lock and semaphore).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import time
from collections.abc import Callable
from multiprocessing.context import BaseContext
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import numpy as np

from vidpipe.pipeline.channels import Aborted
from vidpipe.pipeline.errors import VidpipeError


class SlotRing:
    def __init__(self, ctx: BaseContext, slots: int, slot_bytes: int, label: str = "ring") -> None:
        if slots < 1 or slot_bytes < 1:
            raise ValueError(f"a slot ring needs slots >= 1 and slot_bytes >= 1, got {slots}, {slot_bytes}")
        self.slots = slots
        self.slot_bytes = slot_bytes
        self.label = label
        self._shm = SharedMemory(create=True, size=slots * slot_bytes, name=_segment_name(label))
        _reserve(self._shm, label)
        self._creator_pid = os.getpid()
        self._free = ctx.Semaphore(slots)
        self._lock = ctx.Lock()
        self._stack: Any = ctx.RawArray(ctypes.c_int32, list(range(slots)))
        self._top: Any = ctx.RawValue(ctypes.c_int32, slots)

    @property
    def name(self) -> str:
        return self._shm.name

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_shm"] = self._shm.name
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._shm = SharedMemory(name=state["_shm"])

    def acquire(self, timeout: float | None) -> int | None:
        """A free slot index, or None if none came free within `timeout` seconds."""
        if not self._free.acquire(timeout=timeout):
            return None
        with self._lock:
            self._top.value -= 1
            return int(self._stack[self._top.value])

    def acquire_or_abort(self, aborted: Callable[[], bool], poll_s: float = 0.2) -> int:
        """Wait for a free slot; raise Aborted once `aborted()` says the graph is going down."""
        while True:
            slot = self.acquire(timeout=poll_s)
            if slot is not None:
                return slot
            if aborted():
                raise Aborted(f"{self.label}: aborted while waiting for a free slot")

    def release(self, slot: int) -> None:
        with self._lock:
            if self._top.value >= self.slots:
                raise RuntimeError(f"{self.label}: slot {slot} released twice")
            self._stack[self._top.value] = slot
            self._top.value += 1
        self._free.release()

    def free_count(self) -> int:
        with self._lock:
            return int(self._top.value)

    def view(self, slot: int, shape: tuple[int, ...], dtype: np.dtype | type = np.uint8) -> np.ndarray:
        """A numpy view of `slot` (no copy); valid until the ring is closed."""
        dt = np.dtype(dtype)
        nbytes = math.prod(shape) * dt.itemsize  # math.prod: np.prod costs ~4 us, several calls per frame
        if nbytes > self.slot_bytes:
            raise ValueError(f"{self.label}: {shape} {dt} needs {nbytes} bytes, slots hold {self.slot_bytes}")
        assert self._shm.buf is not None
        return np.ndarray(shape, dtype=dt, buffer=self._shm.buf, offset=slot * self.slot_bytes)

    def close(self) -> None:
        """Detach this process; views must be dropped first."""
        with contextlib.suppress(BufferError):  # a numpy view still references it: freed at exit
            self._shm.close()

    def unlink(self) -> None:
        """Remove the segment (creator only; idempotent)."""
        if os.getpid() != self._creator_pid:
            return
        with contextlib.suppress(FileNotFoundError):
            self._shm.unlink()


def _segment_name(label: str) -> str:
    # A recognisable prefix lets tests (and people) find leaked segments in /dev/shm.
    return f"vidpipe_{os.getpid()}_{label}_{os.urandom(3).hex()}"


def _reserve(shm: SharedMemory, label: str) -> None:
    """Take the segment's memory now: a segment is created at any size, and without this the
    first write to a page that /dev/shm has no room for kills that process with SIGBUS (another
    job may fill /dev/shm between our plan and our first frame). ~0.2 ms per MiB, once."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is None:  # macOS: no /dev/shm to run out of in the same way
        return
    try:
        fallocate(shm._fd, 0, shm.size)  # type: ignore[attr-defined]
    except OSError as exc:
        shm.close()
        shm.unlink()
        raise VidpipeError(f"/dev/shm: no room for the {label} ring ({shm.size / 2**20:.0f} MiB): "
                           f"{exc.strerror}; another job may have taken the space: free some, or "
                           "enlarge it (docker run --shm-size=1g)") from None


def shm_free_bytes(shm_dir: Path = Path("/dev/shm")) -> int | None:
    """Free bytes of the filesystem that holds the segments (None: not there, e.g. macOS).
    A segment larger than this is created without complaint and kills its first writer with SIGBUS."""
    try:
        st = os.statvfs(shm_dir)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def reclaim_orphaned_segments(shm_dir: Path = Path("/dev/shm")) -> list[str]:
    """Unlink the segments of vidpipe processes that no longer exist (a job killed outright, with
    its resource tracker, leaves them behind). Names carry the creator's pid: a segment whose
    creator is alive (another job) is never touched. Returns the names removed."""
    removed = []
    for path in shm_dir.glob("vidpipe_*_*"):
        pid = path.name.split("_")[1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError, PermissionError):
            path.unlink()
            removed.append(path.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


SEMAPHORE_GRACE_S = 60.0  # a semaphore this new may be between sem_open and its first mapping


def reclaim_orphaned_semaphores(shm_dir: Path = Path("/dev/shm"), grace_s: float = SEMAPHORE_GRACE_S) -> list[str]:
    """Unlink multiprocessing's named semaphores (sem.mp-*) that no process has open: under spawn
    they live until their creator's finalizer or resource tracker unlinks them, so a job killed
    outright with its tracker leaves its locks and queues' semaphores behind. Their names do not
    say who made them; one that no running process maps (/proc/PID/maps), older than `grace_s`,
    can only be an orphan: opening one again takes its name from a process that has it open.
    Returns the names removed."""
    now = time.time()
    candidates = []
    for path in shm_dir.glob("sem.mp-*"):
        with contextlib.suppress(FileNotFoundError):
            st = path.stat()
            if now - st.st_mtime >= grace_s:
                candidates.append((path, st.st_ino))
    if not candidates:
        return []
    in_use = _mapped_inodes(shm_dir)
    removed = []
    for path, inode in candidates:
        if inode not in in_use:
            with contextlib.suppress(FileNotFoundError, PermissionError):
                path.unlink()
                removed.append(path.name)
    return removed


def _mapped_inodes(shm_dir: Path) -> set[int]:
    """Inodes of the files in `shm_dir` that some process maps. By inode, not name: glibc's
    sem_open maps a temporary file, then links it under its name, so maps shows the temporary one."""
    prefix = f" {shm_dir}/"
    inodes: set[int] = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            lines = maps.read_text().splitlines()
        except OSError:  # gone, or not ours to read (then its files are not ours to unlink either)
            continue
        inodes.update(int(line.split()[4]) for line in lines if prefix in line)
    return inodes

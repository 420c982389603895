from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import vidpipe_segments
from vidpipe.pipeline.shm import SlotRing, reclaim_orphaned_semaphores


def test_slots_are_views_into_one_segment_and_free_list_works() -> None:
    ctx = multiprocessing.get_context("spawn")
    ring = SlotRing(ctx, 3, 64, "t")
    try:
        a, b, c = (ring.acquire(0) for _ in range(3))
        assert sorted([a, b, c]) == [0, 1, 2]  # type: ignore[type-var]
        assert ring.acquire(0.01) is None  # full: times out instead of blocking forever
        ring.view(b, (8,), np.int64)[:] = 7  # type: ignore[arg-type]
        assert ring.view(b, (64,), np.uint8).sum() == 7 * 8  # type: ignore[arg-type]
        ring.release(b)  # type: ignore[arg-type]
        assert ring.acquire(0) == b
        with pytest.raises(ValueError):
            ring.view(0, (65,), np.uint8)
    finally:
        ring.close()
        ring.unlink()
    assert ring.name.lstrip("/") not in vidpipe_segments()


def test_double_release_is_an_error() -> None:
    ring = SlotRing(multiprocessing.get_context("spawn"), 1, 8, "t")
    try:
        with pytest.raises(RuntimeError, match="released twice"):
            ring.release(0)
    finally:
        ring.close()
        ring.unlink()


def test_ring_pickles_by_name_only_while_spawning() -> None:
    ring = SlotRing(multiprocessing.get_context("spawn"), 2, 1 << 20, "t")
    try:
        with pytest.raises(RuntimeError):  # semaphores refuse to travel through queues
            pickle.dumps(ring)
    finally:
        ring.close()
        ring.unlink()


def test_orphaned_semaphores_are_reclaimed_and_open_ones_kept() -> None:
    """A process that dies without cleaning up (kill -9, its resource tracker too) leaves its
    named semaphores; the next job removes those no process has open, once they are old enough."""
    orphan = f"mp-vidpipe-test-{os.getpid()}"
    code = ("import _multiprocessing, os; "
            f"_multiprocessing.SemLock(1, 1, 1, '/{orphan}', False); os._exit(0)")  # no unlink, no finalizer
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    path = Path("/dev/shm") / f"sem.{orphan}"
    assert path.exists()
    live = multiprocessing.get_context("spawn").Lock()  # this process maps it: in use
    live_path = Path("/dev/shm") / f"sem.{live._semlock.name.lstrip('/')}"  # type: ignore[attr-defined]
    try:
        assert orphan not in " ".join(reclaim_orphaned_semaphores())  # too new: it may be being opened
        old = time.time() - 3600
        for p in (path, live_path):
            os.utime(p, (old, old))
        removed = reclaim_orphaned_semaphores()
        assert f"sem.{orphan}" in removed and not path.exists()
        assert live_path.name not in removed and live_path.exists()
        with live:
            pass  # still works
    finally:
        path.unlink(missing_ok=True)


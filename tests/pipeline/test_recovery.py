"""What a crashed process leaves behind, and the restart rules: start limit and back-off, a queue
lock held by a killed process, slots reclaimed from a dead holder."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest

from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.flags import SharedFlag
from vidpipe.pipeline.recovery import CrashLog, LeasedSlotRing, RestartPolicy, repair_lock, repair_queue


def _hold_and_wait(lock: Any) -> None:
    lock.acquire()
    time.sleep(60)  # killed by the test while holding the lock


def test_the_start_limit_and_a_doubling_back_off() -> None:
    log = CrashLog(RestartPolicy(max_restarts=3, window_s=10, backoff_initial_s=0.5, backoff_max_s=1.5))
    assert [log.next_delay(t) for t in (0.0, 1.0, 2.0)] == [0.5, 1.0, 1.5]  # doubling, capped
    assert log.next_delay(3.0) is None  # a 4th crash within 10 s: not restarted
    fresh = CrashLog(RestartPolicy(max_restarts=1, window_s=10))
    assert fresh.next_delay(0.0) is not None and fresh.next_delay(20.0) is not None  # the window slides


@pytest.mark.timeout(30)
def test_a_queue_lock_left_held_by_a_killed_consumer_is_freed(start_method: str) -> None:
    ctx = multiprocessing.get_context(start_method)
    channel = Channel(ctx, "q", 4, SharedFlag(ctx))
    try:
        holder = ctx.Process(target=_hold_and_wait, args=(channel._q._rlock,))
        holder.start()
        deadline = time.monotonic() + 10
        while channel._q._rlock.acquire(timeout=0.05):  # until the child holds it
            channel._q._rlock.release()
            assert time.monotonic() < deadline
        holder.kill()
        holder.join()
        assert repair_queue(channel, reader=True, writer=True, probe_s=0.2) == ["q reader lock"]
        channel.put(42)
        assert channel.get(timeout=2) == 42  # usable again
        assert not repair_lock(channel._q._rlock, 0.1)  # a free lock is left alone
    finally:
        channel.close()


def test_slots_held_by_the_dead_are_reclaimed_and_fresh_ones_kept() -> None:
    ring = LeasedSlotRing(multiprocessing.get_context("spawn"), 4, 8, "leased")
    try:
        lost = [ring.acquire(0), ring.acquire(0)]  # taken by a process that then died
        t_crash = time.monotonic()
        kept = ring.acquire(0)  # taken after the crash by a live stage
        assert None not in lost and kept is not None
        assert ring.reclaim(t_crash) == 2
        assert ring.free_count() == 3
        ring.release(kept)
        assert ring.free_count() == 4 and ring.reclaim(time.monotonic()) == 0
    finally:
        ring.close()
        ring.unlink()

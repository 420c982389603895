"""What the supervisor does when a restartable stage process dies (live jobs), and what the
dead process leaves behind.

    crash --> start limit reached? --yes--> the job fails (as a file job does at once)
                  | no
                  v
              repair the locks it may have held --> respawn after a back-off --> StageRestarted
              ... later: reclaim the slots it held (LeasedSlotRing)

Restarts follow systemd's `Restart=on-failure` with `StartLimitBurst`/`StartLimitIntervalSec`:
at most `max_restarts` crashes of one process within `window_s`, the delay doubling with each
crash in the window (`backoff_initial_s` .. `backoff_max_s`).

What a process killed outright (kill -9) can leave behind, and how each is handled:

* **A queue lock.** A `multiprocessing.Queue` consumer holds the queue's reader lock while it
  waits for data (`get(timeout)` polls the pipe under the lock), so a consumer killed while
  idle leaves the lock held and every other consumer blocked for good; a producer's feeder
  thread holds the writer lock for the length of one write. CPython's ProcessPoolExecutor
  therefore declares the whole pool broken. Here `repair_lock` takes the lock with a timeout
  longer than any live holder keeps it (a live consumer holds it at most one poll period of its
  Channel) and, if it cannot, releases it on the dead holder's behalf. Not recoverable, and
  left as a known limit: a process killed in the middle of the few microseconds of a pipe
  write or read leaves a torn message (the next reader fails to unpickle it and dies too, which
  the start limit then turns into a clean failure).
* **Slots.** Frames and tensors the dead process had taken are never released by anyone.
  LeasedSlotRing stamps each slot when it is taken; slots taken before the crash and still
  held `reclaim_after_s` after the respawn are put back (no live stage keeps a live frame
  that long: stale frames are dropped within `live.stale_after_ms`).
* **Items in flight** (taken from a queue, not yet passed on) are lost: live sinks skip the
  gap in sequence numbers after a timeout (stages.outputs.live_sink).
* **What a process knew** is gone with it. Most stages know nothing a successor needs; the one
  that does (the live sink: the streams it had begun) is renewed by its job before it starts
  again (Supervisor.on_restart).
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from typing import Any

from vidpipe.pipeline.backoff import BackoffPolicy
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.queue_parts import reader_lock, writer_lock
from vidpipe.pipeline.shm import SlotRing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    """How a tier's crashed processes are restarted (None on a Tier: a crash stops everything)."""

    max_restarts: int = 5  # crashes of one process within window_s that are restarted; one more fails
    window_s: float = 60.0
    backoff_initial_s: float = 0.5  # delay before the first restart; doubles per crash in the window
    backoff_max_s: float = 10.0
    reclaim_after_s: float = 30.0  # slots taken before a crash and still held this long after the restart


@dataclass(frozen=True)
class StageRestarted(Event):
    """The supervisor restarted a crashed stage process (reported to the job's on_event)."""

    stage: str
    restarts: int  # restarts of this process so far
    how: str  # "killed by signal 9", "exit code 1"
    delay_s: float  # back-off before the new process starts
    detail: str = ""  # the stage's own one-line failure, if it reported one


@dataclass
class CrashLog:
    """Crash times of one process, for the start limit and the back-off."""

    policy: RestartPolicy
    times: deque[float] = field(default_factory=deque)
    restarts: int = 0

    def next_delay(self, now: float) -> float | None:
        """The back-off before restarting after a crash at `now`, or None: the start limit is hit."""
        self.times.append(now)
        while self.times and now - self.times[0] > self.policy.window_s:
            self.times.popleft()
        crashes = len(self.times)
        if crashes > self.policy.max_restarts:
            return None
        self.restarts += 1
        return BackoffPolicy(self.policy.backoff_initial_s, self.policy.backoff_max_s).delay(crashes - 1)


def repair_lock(lock: Any, probe_s: float) -> bool:
    """Free `lock` (a multiprocessing Lock) if a dead process left it held: True if it was.

    Takes it within `probe_s` seconds (longer than any live holder keeps it) and gives it back;
    failing that, releases it on the dead holder's behalf. May block up to `probe_s`."""
    if lock.acquire(timeout=probe_s):
        lock.release()
        return False
    lock.release()
    return True


WRITE_PROBE_S = 0.5  # writer and ring locks are held for one write: longer than this means a dead holder
LOG_PROBE_S = 3.0  # the log queue's live writers may wait on a slow stderr


def repair_locks(inbox: Any, consumers_alive: bool, outbox: Any, rings: Sequence[SlotRing], events: Any,
                 log_queue: Any) -> list[str]:
    """After a process died: free what it may have held of its inbox's reader lock, its outbox's
    writer lock, the rings' locks and the event and log queues' writer locks (the supervisor's own
    log lines go through the log queue, and its exit waits for them). Names what was freed."""
    repaired = []
    if inbox is not None:
        # a live consumer holds the reader lock one poll period at a time: wait out a few
        probe = 5 * inbox._poll_s if consumers_alive else 0.05
        repaired += repair_queue(inbox, reader=True, writer=False, probe_s=probe)
    if outbox is not None:
        repaired += repair_queue(outbox, reader=False, writer=True, probe_s=WRITE_PROBE_S)
    repaired += [f"{r.label} ring lock" for r in rings if repair_lock(r._lock, WRITE_PROBE_S)]
    queues = [("event queue", events, WRITE_PROBE_S), ("log queue", log_queue, LOG_PROBE_S)]
    return repaired + [f"{what} writer lock" for what, q, probe in queues
                       if q is not None and repair_lock(writer_lock(q), probe)]


def repair_queue(channel: Any, reader: bool, writer: bool, probe_s: float) -> list[str]:
    """Repair the reader and/or writer lock of a pipeline Channel; names what was repaired."""
    q = channel._q  # the multiprocessing.Queue inside the Channel
    repaired = []
    for side, lock, wanted in (("reader", reader_lock(q), reader), ("writer", writer_lock(q), writer)):
        if wanted and lock is not None and repair_lock(lock, probe_s):
            repaired.append(f"{channel.name} {side} lock")
    return repaired


class LeasedSlotRing(SlotRing):
    """A SlotRing that stamps each slot with the time it was taken, so that the slots a dead
    process held can be found and put back (`reclaim`). Costs one store per acquire/release."""

    def __init__(self, ctx: BaseContext, slots: int, slot_bytes: int, label: str = "ring") -> None:
        super().__init__(ctx, slots, slot_bytes, label)
        # CLOCK_MONOTONIC is one clock for every process of the machine: stamps compare across them
        self._taken: Any = ctx.RawArray(ctypes.c_double, slots)  # 0.0: free

    def acquire(self, timeout: float | None) -> int | None:
        slot = super().acquire(timeout)
        if slot is not None:
            self._taken[slot] = time.monotonic()
        return slot

    def release(self, slot: int) -> None:
        self._taken[slot] = 0.0
        super().release(slot)

    def reclaim(self, taken_before: float) -> int:
        """Put back every slot taken before `taken_before` and still held; returns how many."""
        stale = [i for i in range(self.slots) if 0.0 < self._taken[i] < taken_before]
        for slot in stale:
            self.release(slot)
        return len(stale)


@dataclass
class Reclaim:
    due: float  # time.monotonic() when to run it
    taken_before: float  # the crash time


def reclaim_rings(rings: list[SlotRing], taken_before: float) -> None:
    for ring in rings:
        if isinstance(ring, LeasedSlotRing) and (n := ring.reclaim(taken_before)):
            log.warning("reclaimed %d %s slot(s) held by a crashed stage", n, ring.label)

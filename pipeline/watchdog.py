"""Signs of life from stage processes, so that a stuck stage is named instead of hanging a job.

Every stage process beats a counter in shared memory whenever its main thread gets control:
each inbox batch, and each poll of a blocking wait (a full queue, an empty one, a free slot:
those waits wake every 0.2 s to check for abort). A stage that is busy, idle or blocked on its
neighbours keeps beating; one that is SIGSTOPped, deadlocked, or stuck in a native call that never
returns (a hung driver) does not. The supervisor reads the counters once a second
(`StallWatch.stuck`) and reports a process whose counter has not moved for `stall_timeout_s`.

    supervisor: hb = new_counter(ctx) -> passed to the stage process in its StageContext
    stage:      install(hb) once at start;  beat() from the waits (Channel.aborted, Stage.aborted)
"""

from __future__ import annotations

import ctypes
import time
from multiprocessing.context import BaseContext
from typing import Any

_installed: Any = None  # this process's counter; set once by run_stage in each stage process


def install(counter: Any) -> None:
    global _installed
    _installed = counter


def beat() -> None:
    """One sign of life (cheap: an unlocked increment of a shared 64-bit counter, one writer)."""
    if _installed is not None:
        _installed.value += 1


def new_counter(ctx: BaseContext) -> Any:
    return ctx.RawValue(ctypes.c_uint64, 0)


class StallWatch:
    """Which processes have shown no sign of life for `timeout_s` (see the module docstring)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._seen: dict[str, tuple[int, float]] = {}  # name -> (last count, when it last changed)

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)

    def stuck(self, counters: dict[str, Any], now: float | None = None) -> list[tuple[str, float]]:
        """(name, seconds without a sign of life) for every process over the limit."""
        now = time.monotonic() if now is None else now
        late = []
        for name, counter in counters.items():
            count = int(counter.value)
            last = self._seen.get(name)
            if last is None or last[0] != count:
                self._seen[name] = (count, now)
            elif now - last[1] > self.timeout_s:
                late.append((name, now - last[1]))
        return late

"""Flags that every process of a graph reads without a lock: abort, drain, a stream's stop.

multiprocessing.Event.is_set() takes a lock shared by every process holding the Event. A stage
that is stopped (SIGSTOP) or killed while inside it leaves that lock held: every other stage and
the supervisor then block on their next check, for good, and the stall watchdog cannot even say
so. Here the flag is one aligned machine word in shared memory: set() is a single store, is_set()
a single load, and nothing any process does can block another. Stages poll their flags (every
wait wakes every 0.2 s), so a flag needs no wait().
"""

from __future__ import annotations

import ctypes
from multiprocessing.context import BaseContext
from typing import Any, Protocol


class Flag(Protocol):
    """What a stage needs of a flag; a threading.Event also fits (in-process tests)."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...


class SharedFlag:
    """A lock-free flag shared with the processes the supervisor starts (passed at spawn)."""

    def __init__(self, ctx: BaseContext) -> None:
        self._word: Any = ctx.RawValue(ctypes.c_int, 0)

    def set(self) -> None:
        self._word.value = 1

    def is_set(self) -> bool:
        return bool(self._word.value)

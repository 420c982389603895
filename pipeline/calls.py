"""Calls handed to a loop's thread from other threads (the supervisor's: Supervisor.call_soon_threadsafe).

    calls = LoopCalls()
    future = calls.submit(fn)      # any thread; then wake the loop
    calls.run()                    # the loop's thread: each fn() once, its result into its Future
    calls.close()                  # the loop ended: what is waiting, and what comes later, fails
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class LoopCalls:
    def __init__(self) -> None:
        self._calls: list[tuple[Callable[[], Any], Future[Any]]] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                future.set_exception(RuntimeError("the job has ended"))
            else:
                self._calls.append((fn, future))
        return future

    def run(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, []
        for fn, future in calls:
            try:
                future.set_result(fn())
            except Exception as exc:  # the caller's to handle, on its own thread
                future.set_exception(exc)

    def close(self) -> None:
        with self._lock:
            calls, self._calls, self._closed = self._calls, [], True
        for _fn, future in calls:
            future.set_exception(RuntimeError("the job has ended"))

"""What a running job hands to the Python caller, without ever holding the graph up.

    supervisor thread                          caller's thread
    CallerJob.on_event(FrameResults) --put--> Feed (bounded; full: dropped and counted) --> for r in run
    CallerJob.on_event(any event)    --put--> Feed of callbacks --> a thread that calls on_result / on_event

The graph's supervisor calls `on_event` on its own thread, which also starts and reaps every stage:
a caller's loop or callback that is slow must never block it. Each Feed is bounded; what does not
fit is dropped, counted and reported once (`dropped`), as live edges do with frames.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.supervisor import ProcSpec, Supervisor
from vidpipe.stages.jobs.base import GraphPlan, GraphShape, Job, Service
from vidpipe.stages.sink import OutputsFactory

T = TypeVar("T")


class Feed(Generic[T]):
    """A bounded buffer: `put` never blocks (it drops and counts), iteration blocks until items
    come or the feed is closed."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[T] = deque()
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: T) -> bool:
        with self._cond:
            if len(self._items) >= self.capacity:
                self.dropped += 1
                return False
            self._items.append(item)
            self._cond.notify()
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> tuple[bool, T | None]:
        """(True, item), or (False, None) once closed and empty (or after `timeout`)."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout)
            if self._items:
                return True, self._items.popleft()
            return False, None

    def __iter__(self) -> Iterator[T]:
        while True:
            ok, item = self.get()
            if not ok:
                return
            yield item  # type: ignore[misc]


class CallbackThread:
    """Calls `callback(item)` for each item of a Feed on its own thread (a slow callback fills
    the feed, and the graph drops instead of waiting); exceptions are kept for `join` to raise."""

    def __init__(self, feed: Feed[Any], callback: Callable[[Any], None], name: str) -> None:
        self.feed, self.callback = feed, callback
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for item in self.feed:
            if self.error is None:
                try:
                    self.callback(item)
                except BaseException as exc:  # the caller's bug: raised by join(), the job goes on
                    self.error = exc

    def join(self, timeout: float | None = None) -> None:
        self.feed.close()
        self.thread.join(timeout)


class CallerJob:
    """Any Job, with its events also handed to the caller (through `sink`, which must not block),
    and the supervisor kept so that another thread can stop the graph (`stop`)."""

    def __init__(self, job: Job, sink: Callable[[Event], None]) -> None:
        self.job, self._sink = job, sink
        self._supervisor: Supervisor | None = None
        self._stop_asked = False
        self._lock = threading.Lock()

    @property
    def config(self) -> Any:
        return self.job.config

    @config.setter
    def config(self, value: Any) -> None:
        self.job.config = value

    def prepare(self) -> GraphShape:
        return self.job.prepare()

    def sources(self, frames: SlotRing, outbox: Channel) -> list[ProcSpec]:
        return self.job.sources(frames, outbox)

    def outputs(self, plan: GraphPlan) -> OutputsFactory:
        return self.job.outputs(plan)

    def on_event(self, event: Event) -> None:
        self.job.on_event(event)
        self._sink(event)

    def attach(self, supervisor: Supervisor) -> None:
        if isinstance(self.job, Service):
            self.job.attach(supervisor)
        with self._lock:
            self._supervisor = supervisor
            if self._stop_asked:
                supervisor.request_stop_threadsafe()

    def stop(self) -> None:
        """Drain the graph (as Ctrl-C does), from any thread; before it starts, it stops at once."""
        with self._lock:
            self._stop_asked = True
            if self._supervisor is not None:
                self._supervisor.request_stop_threadsafe()

    def call_in_job(self, call: Callable[[Any], T], timeout: float = 30.0) -> T:
        """`call(job)` on the supervisor's thread (where the job changes its graph); its result.
        RuntimeError when the graph is not running."""
        with self._lock:
            supervisor = self._supervisor
        if supervisor is None:
            raise RuntimeError("the job is not running yet: start() it first")
        return supervisor.call_soon_threadsafe(lambda: call(self.job)).result(timeout)

    def close(self) -> None:
        self.job.close()

    def finish(self, interrupted: bool) -> None:
        self.job.finish(interrupted)

    def exit_code(self, interrupted: bool) -> int:
        return self.job.exit_code(interrupted)

    def release(self) -> None:
        self.job.release()

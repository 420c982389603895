"""The handles of `vidpipe.watch(...)` and `vidpipe.live(...)`: a service-like job on a thread of
the caller's process, its results and events handed to the caller's callbacks.

    with vidpipe.live(["0"], on_result=show, on_event=notify) as cam:
        cam.add_stream("rtsp://door/stream", name="door")
        cam.status(); cam.streams()
        cam.remove_stream("door")
        cam.join()                         # until stop() (or Ctrl-C)

Callbacks run on one thread per kind, never on the job's: a slow one fills its queue
(CALLBACK_QUEUE), and what does not fit is dropped and counted (`dropped`), never waited for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from vidpipe.pipeline.errors import ConfigError
from vidpipe.pipeline.events import Event
from vidpipe.stages.config import JobConfig, SourceSettings
from vidpipe.stages.events import FrameResult, FrameResults, LiveEvent, StreamDone
from vidpipe.stages.jobs.base import Job
from vidpipe.stages.jobs.feed import CallbackThread, Feed
from vidpipe.stages.jobs.handles import JobRun, JobStatus, Runner

CALLBACK_QUEUE = 10_000  # items waiting for a callback; more are dropped and counted


class _CallbackRun(JobRun):
    """A JobRun whose FrameResults go to `on_result` and its `EVENTS` to `on_event`."""

    EVENTS: tuple[type[Event], ...] = ()

    def __init__(self, job: Job, runner: Runner, log_level: int, on_result: Callable[[FrameResult], None] | None,
                 on_event: Callable[[Any], None] | None) -> None:
        super().__init__(job, runner, log_level)
        self._results = CallbackThread(Feed(CALLBACK_QUEUE), on_result, "vidpipe-on-result") if on_result else None
        self._events = CallbackThread(Feed(CALLBACK_QUEUE), on_event, "vidpipe-on-event") if on_event else None

    @property
    def dropped(self) -> dict[str, int]:
        """Results and events the callbacks were too slow for."""
        return {"results": self._results.feed.dropped if self._results else 0,
                "events": self._events.feed.dropped if self._events else 0}

    def join(self, timeout: float | None = None) -> bool:
        ended = super().join(timeout)
        for callback in (self._results, self._events):
            if ended and callback is not None:
                callback.join()
                if callback.error is not None:
                    raise callback.error
        return ended

    def _event(self, event: Event) -> None:
        if isinstance(event, FrameResults):
            if self._results is not None:
                for result in event.results:
                    self._results.feed.put(result)
        elif self._events is not None and isinstance(event, self.EVENTS):
            self._events.feed.put(event)
        super()._event(event)

    def _ended(self) -> None:
        for callback in (self._results, self._events):
            if callback is not None:
                callback.feed.close()


class WatchRun(_CallbackRun):
    """`vidpipe.watch(...)`: see the module docstring; `on_event` gets a StreamDone per video."""

    EVENTS = (StreamDone,)


class LiveRun(_CallbackRun):
    """`vidpipe.live(...)`: see the module docstring; `on_event` gets each LiveEvent."""

    EVENTS = (LiveEvent,)

    def add_stream(self, uri: str | int, name: str = "", **settings: Any) -> dict[str, Any]:
        """Start a stream (as POST /api/streams does); ConfigError in one line if it cannot be."""
        from vidpipe.pipeline.config import from_mapping

        source = from_mapping(SourceSettings, {"uri": str(uri), "name": name, **settings}, "add_stream()")
        return self._ask(lambda job: job.add_stream(source, "python"))

    def remove_stream(self, name: str) -> dict[str, Any]:
        """Stop a stream (its outputs are finalized), as DELETE /api/streams/NAME does."""
        return self._ask(lambda job: job.remove_stream(name, "python"))

    def streams(self) -> list[dict[str, Any]]:
        """The running streams, as GET /api/streams lists them."""
        return list(self._ask(lambda job: job.list_streams())["streams"])

    def _ask(self, call: Callable[[Any], tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        code, body = self._call(call)
        if code >= 300:
            raise ConfigError(str(body.get("error", f"refused ({code})")), key=str(body.get("key", "")))
        return body

    def _call(self, call: Callable[[Any], tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
        """`call(job)` where the job changes its graph: the supervisor's thread."""
        return self.caller.call_in_job(call)


class LiveRayRun(LiveRun):
    """`vidpipe.live(..., ray=ADDRESS)`: the streams on the nodes of a Ray cluster, their front
    (stages.jobs.live_ray) on a thread of this process, with LiveRun's calls. `on_event` gets each
    label event once, from whichever node; per-frame results stay in the nodes' files (OUT)."""

    def __init__(self, config: JobConfig, log_level: int, on_event: Callable[[Any], None] | None) -> None:
        from vidpipe.stages.jobs.live_ray import LiveFront

        self.front = LiveFront(config, self._node_event if on_event is not None else None)
        super().__init__(cast(Job, self.front), self._serve, log_level, None, on_event)

    def _serve(self, caller: Any, log_queue: Any, level: int) -> int:
        return self.front.run()

    def _node_event(self, data: dict[str, Any]) -> None:
        self._event(LiveEvent(str(data.get("type", "")), str(data.get("stream", "")), data))

    def stop(self) -> None:
        """Every node's streams drained (outputs finalized), then the front ends."""
        self._stopping = True
        self.front.stop.set()

    def status(self) -> JobStatus:
        base = super().status()
        with self.front.lock:
            frames = sum(int(s.info.get("frames", 0)) for s in self.front.streams.values())
            return replace(base, frames=frames, streams_open=len(self.front.streams))

    def _call(self, call: Callable[[Any], tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
        return call(self.front.api)  # the front's API is thread-safe (its lock)

"""The driver's side of warm workers (`vidpipe label --ray`, the default): one LabelWorker actor
(stages.jobs.ray_actor) per worker slot, fed from the job's plan.

    todo: the plan's videos, longest first
    a worker that is ready holds at most its decoders + cluster.videos_queued videos at once (its
        decoders never wait for the next video), and no more than an even share of what is left
        (a worker that is ready first, or a slow one, does not hoard the rest)
    each answer is recorded as it comes (the driver's `record`: progress, manifest)

When things go wrong:
* a worker lost (RayActorError: its process killed, its node gone): the videos it held go back to
  the front of the queue (each at most cluster.max_retries times: at least once, and published
  only when complete) and a worker is started in its place (Ray puts it where there is room; at
  most cluster.max_retries per slot over the job);
* a worker whose graph failed (a stage crashed) answers `unfinished`; it is stopped once it holds
  no more videos, and replaced. Each such video is a suspect: it runs again alone in a worker's
  graph (no other video is sent to that worker meanwhile, and none to any worker until every
  suspect has one), so only the video that brings a failure about fails (with that failure's
  line) and the others are labeled;
* a worker that does not start within START_TIMEOUT_S (no room left on the cluster) is given up.

At the end (or on Ctrl-C) every worker is stopped: its graph drained and joined, its card and
staging folder released; then its actor is ended. A worker still starting is ended at once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from vidpipe.pipeline.errors import one_line
from vidpipe.pipeline.redact import printable
from vidpipe.stages.config import JobConfig
from vidpipe.stages.jobs.ray_actor import LabelWorker
from vidpipe.stages.jobs.ray_worker import VideoResult
from vidpipe.stages.sources.files import VideoInfo, decode_size, largest_frame_bytes

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0  # a worker's graph to start (a dozen spawned processes on a busy host)
STOP_TIMEOUT_S = 60.0  # a worker's graph to drain at the end
STEP_S = 1.0  # the loop's longest wait: starts that take too long are seen this often
MAX_CONCURRENCY = 32  # calls an actor runs at once (threads); the driver sends fewer label() calls

Record = Callable[[VideoInfo, VideoResult], None]


@dataclass(eq=False)
class Worker:
    actor: Any
    since: float  # when it was asked for
    starting: Any | None  # its ready() call, until it answers
    room: int = 0  # videos it holds at most, once ready
    host: str = ""  # its host, node and pid, once ready
    calls: dict[Any, VideoInfo] = field(default_factory=dict)  # its label() calls under way
    broken: str = ""  # its graph has ended: it gets no more videos
    alone: bool = False  # it labels a suspect, and nothing else meanwhile


def ray_resources(resources: dict[str, float]) -> dict[str, Any]:
    """What one worker takes, as Ray's options() want it: CPUs apart from custom resources (cards)."""
    return {"num_cpus": resources.get("CPU", 0), "resources": {k: v for k, v in resources.items() if k != "CPU"}}


def ray_error(exc: BaseException) -> str:
    """One line for an error Ray raised: the worker's own exception where there is one."""
    cause = getattr(exc, "cause", None)
    return one_line(cause if isinstance(cause, BaseException) else exc)


class WarmWorkers:
    """See the module docstring. `resources`: what one worker takes; `record`: called with each
    video's result as it comes."""

    def __init__(self, ray: Any, config: JobConfig, videos: list[VideoInfo], resources: dict[str, float],
                 record: Record) -> None:
        self.ray, self.config, self.record = ray, config, record
        self.todo = deque(sorted(videos, key=decode_size, reverse=True))
        self.max_frame_bytes = largest_frame_bytes(videos)
        self.tries: Counter[str] = Counter()  # video -> workers lost while they held it
        self.workers: list[Worker] = []
        self.suspects: deque[VideoInfo] = deque()  # videos a failed graph held: each runs again alone
        self.stopping: dict[Any, Any] = {}  # a stop() call -> its actor, ended once it answers (its card is free)
        self.spares = 0  # workers that may still be started in place of lost ones
        self.why = ""  # the last loss
        self.actor = ray.remote(LabelWorker).options(**ray_resources(resources), max_restarts=0,
                                                     max_concurrency=MAX_CONCURRENCY)

    def run(self, slots: int) -> bool:
        """Label every video on `slots` workers; True if interrupted (Ctrl-C)."""
        self.spares = slots * self.config.cluster.max_retries
        for _ in range(min(slots, len(self.todo))):
            self._start()
        log.info("%d videos on %d warm workers", len(self.todo), len(self.workers))
        try:
            while self.todo or self.suspects or any(w.calls for w in self.workers):
                self._feed()
                self._step()
            return False
        except KeyboardInterrupt:
            held = len(self.todo) + len(self.suspects) + sum(len(w.calls) for w in self.workers)
            log.warning("interrupted: stopping the workers (%d videos not done: nothing of theirs is published)", held)
            return True
        finally:
            self._stop_all()

    def _start(self) -> None:
        actor = self.actor.remote(self.config, self.max_frame_bytes)
        self.workers.append(Worker(actor, time.monotonic(), actor.ready.remote(START_TIMEOUT_S)))

    def _feed(self) -> None:
        """Suspects first, each to a worker that holds nothing; while there are suspects, no other
        video goes out (the workers run dry, so each suspect finds one). Then videos to the ready
        workers, the least loaded first, each up to its room but no more than an even share of
        what is left (the first worker ready does not take the others' part)."""
        ready = [w for w in self.workers if w.starting is None and not w.broken]
        for w in ready:
            if self.suspects and not w.calls:
                w.alone = True
                self._send(w, self.suspects.popleft())
        ready = [w for w in ready if not w.alone]
        while self.todo and ready and not self.suspects:
            held = len(self.todo) + sum(len(w.calls) for w in self.workers)
            share = -(-held // len(self.workers))
            w = min(ready, key=lambda w: len(w.calls) / w.room)
            if len(w.calls) >= min(w.room, share):
                return
            self._send(w, self.todo.popleft())

    def _send(self, w: Worker, video: VideoInfo) -> None:
        w.calls[w.actor.label.remote(video)] = video

    def _step(self) -> None:
        """Wait for answers (STEP_S at most) and handle every one that has come."""
        owners = {w.starting: w for w in self.workers if w.starting is not None}
        owners.update({ref: w for w in self.workers for ref in w.calls})
        if not owners:  # no worker left: another, or the videos fail
            self._replace() if self.spares > 0 else self._give_up()
            return
        waiting = [*owners, *self.stopping]
        ready, _ = self.ray.wait(waiting, num_returns=1, timeout=STEP_S)
        if ready:
            ready, _ = self.ray.wait(waiting, num_returns=len(waiting), timeout=0)
        for ref in ready:
            if ref in self.stopping:
                self.ray.kill(self.stopping.pop(ref))
            elif (w := owners[ref]) in self.workers:  # not lost meanwhile (with its other calls)
                self._started(w) if ref == w.starting else self._answered(w, ref)
        for w in [w for w in self.workers if w.starting is not None]:
            if time.monotonic() - w.since > START_TIMEOUT_S:
                self._lost(w, f"it did not start within {START_TIMEOUT_S:.0f} s (no room on the cluster?)")

    def _started(self, w: Worker) -> None:
        try:
            decoders, w.host = self.ray.get(w.starting)
        except Exception as exc:  # its graph could not start (a card, /dev/shm...), or its node is gone
            self._lost(w, f"it could not start: {ray_error(exc)}")
            return
        w.starting = None
        w.room = min(decoders + self.config.cluster.videos_queued, MAX_CONCURRENCY - 2)

    def _answered(self, w: Worker, ref: Any) -> None:
        video = w.calls.pop(ref)
        try:
            result: VideoResult = self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.ObjectLostError) as exc:
            w.calls[ref] = video  # goes back to the queue with the worker's other videos
            self._lost(w, f"{w.host or 'a worker'}: its process or node is gone ({type(exc).__name__})")
            return
        except Exception as exc:  # a bug on the worker: this video fails in one line
            result = VideoResult(video.stream, "?", error=f"{printable(video.path)}: failed on the cluster: "
                                 f"{ray_error(exc)}")
        if result.unfinished:  # its graph failed: the worker is replaced
            w.broken = w.broken or result.error
            if w.alone:  # and the video was alone in it: the failure is the video's
                self.record(video, replace(result, unfinished=False))
            else:
                self.suspects.append(video)
        else:
            self.record(video, result)
        w.alone = False
        if w.broken and not w.calls:
            log.warning("a worker is replaced: %s", w.broken)
            self.workers.remove(w)
            self.stopping[w.actor.stop.remote(STOP_TIMEOUT_S)] = w.actor
            self._replace()

    def _lost(self, w: Worker, why: str) -> None:
        """`w` is gone (or given up): its videos back to the front of the queue, a worker in its place."""
        self.workers.remove(w)
        self.ray.kill(w.actor)  # if it still runs (a start given up): its calls end
        self.why = why
        log.warning("a worker was lost: %s: its %d videos go to other workers", why, len(w.calls))
        for video in reversed(list(w.calls.values())):
            self.tries[video.stream] += 1
            if self.tries[video.stream] > self.config.cluster.max_retries:
                self.record(video, VideoResult(video.stream, "?", error=f"{printable(video.path)}: failed on the "
                                               f"cluster: its worker was lost {self.tries[video.stream]} times "
                                               f"(the last: {why})"))
            else:
                (self.suspects if w.alone else self.todo).appendleft(video)
        self._replace()

    def _replace(self) -> None:
        if self.spares > 0 and (self.todo or self.suspects):
            self.spares -= 1
            self._start()

    def _give_up(self) -> None:
        """No worker is left, nor may one be started: the videos still to do fail in one line each."""
        while self.todo or self.suspects:
            video = (self.suspects or self.todo).popleft()
            self.record(video, VideoResult(video.stream, "?", error=f"{printable(video.path)}: failed on the "
                                           f"cluster: no worker left (the last was lost: {self.why})"))

    def _stop_all(self) -> None:
        """Every worker's graph drained and joined (STOP_TIMEOUT_S at most), then its actor ended."""
        for w in self.workers:
            if w.starting is None:
                self.stopping[w.actor.stop.remote(STOP_TIMEOUT_S)] = w.actor
            else:  # never started (or still starting): nothing under way to drain
                self.ray.kill(w.actor)
        self.workers.clear()
        if self.stopping:
            self.ray.wait(list(self.stopping), num_returns=len(self.stopping), timeout=STOP_TIMEOUT_S + 5)
        for actor in self.stopping.values():
            self.ray.kill(actor)
        self.stopping.clear()

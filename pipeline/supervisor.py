"""The supervisor: starts every stage process, watches them, stops them.

    tier 0 (sources) -> tier 1 (preprocess) -> tier 2 (infer) -> tier 3 (sink)

Tiers run in order along the data path. When every process of a tier has exited cleanly, the
supervisor puts one STOP per process into the next tier's inbox: end-of-stream drains the graph
front to back, and the queues being FIFO, every item is handled before its consumer stops.
Tier 0 may hold more processes than run at once (`max_running`: open files).

It waits on process sentinels, the event queue and a signal pipe with
`multiprocessing.connection.wait` (no polling sleeps). Ctrl-C/SIGTERM: sources end their streams
and the graph drains (a second signal, or the drain deadline, aborts). A stage that fails or dies
aborts everything: abort event, join with timeout, terminate, kill, then every ring is unlinked.

Services (live jobs) change the graph while it runs, from the supervisor's own thread (on_event,
or the callback of a connection given to `watch`, which joins the one wait):

    sup.watch(conn, on_ready)          # on_ready() when conn is readable (e.g. the sink's API requests)
    sup.add_process("sources", spec)   # one more process in a running tier (an `open` tier)
    sup.running("source:cam2")         # still running (or waiting to be restarted)?
    sup.drain()                        # end the run as a first Ctrl-C does (nothing left to serve)

A tier with a RestartPolicy (pipeline.recovery) has its crashed processes restarted with back-off
and a start limit instead of failing the job; each restart is a StageRestarted event. A process
whose successor must know what it knew (the live sink) gets a renewal: `sup.on_restart(name, renew)`,
and `renew(spec)` gives the spec that starts after the back-off.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from vidpipe.pipeline.calls import LoopCalls
from vidpipe.pipeline.channels import STOP, Channel
from vidpipe.pipeline.errors import StageFailed
from vidpipe.pipeline.events import Event, StageFailure
from vidpipe.pipeline.flags import SharedFlag
from vidpipe.pipeline.queue_parts import readable_end
from vidpipe.pipeline.recovery import (
    CrashLog,
    Reclaim,
    RestartPolicy,
    StageRestarted,
    reclaim_rings,
    repair_locks,
)
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.stage import StageContext, run_stage, signals_blocked
from vidpipe.pipeline.tiers import ProcSpec, Tier
from vidpipe.pipeline.watchdog import StallWatch, new_counter

__all__ = ["ProcSpec", "Supervisor", "Tier"]

log = logging.getLogger(__name__)



@dataclass
class _TierState:
    tier: Tier
    waiting: list[ProcSpec]
    running: dict[int, BaseProcess] = field(default_factory=dict)  # sentinel -> process
    stops_sent: int = 0
    specs: dict[int, ProcSpec] = field(default_factory=dict)  # sentinel -> what runs in it
    restarting: list[tuple[float, ProcSpec]] = field(default_factory=list)  # (when, what) after a crash


class Supervisor:
    def __init__(
        self,
        ctx: BaseContext,
        tiers: Sequence[Tier],
        rings: Sequence[SlotRing],
        channels: Sequence[Channel],
        on_event: Callable[[Event], None],
        log_queue: Any = None,
        log_level: int = logging.INFO,
        drain_timeout_s: float = 30.0,
        abort: SharedFlag | None = None,
        stall_timeout_s: float = 0.0,
    ) -> None:
        self._ctx = ctx
        self._stalls = StallWatch(stall_timeout_s) if stall_timeout_s > 0 else None
        self._heartbeats: dict[str, Any] = {}  # process name -> its counter (pipeline.watchdog)
        self._tiers = [_TierState(t, list(t.procs)) for t in tiers]
        self._rings = list(rings)
        self._channels = list(channels)
        self._on_event = on_event
        self._log_queue = log_queue
        self._log_level = log_level
        self._drain_timeout_s = drain_timeout_s
        self.abort = abort if abort is not None else SharedFlag(ctx)  # shared with the channels
        self.stop_sources = SharedFlag(ctx)
        self._events: Any = ctx.Queue()
        self._wake_r, self._wake_w = ctx.Pipe(duplex=False)
        self._failure: StageFailed | None = None
        self._drain_deadline: float | None = None
        self._signals = 0
        self._watched: dict[Any, Callable[[], None]] = {}
        self._renewals: dict[str, Callable[[ProcSpec], ProcSpec]] = {}
        self._crashes: dict[str, CrashLog] = {}
        self._stage_failures: dict[str, StageFailure] = {}  # restartable stages' last reports
        self._reclaims: list[Reclaim] = []
        self._calls = LoopCalls()  # call_soon_threadsafe

    # -- public -------------------------------------------------------------------------------
    def run(self) -> None:
        """Run the graph to completion. Raises StageFailed (after cleanup) if a stage failed."""
        # Only the main thread may handle signals; a graph run from another thread (the Python API)
        # is stopped with request_stop_threadsafe() instead.
        main = threading.current_thread() is threading.main_thread()
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
        try:
            self._start_ready()
            while self._any_running() and self._failure is None:
                self._step()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            self._calls.close()
            self._teardown()
        if self._failure is not None:
            raise self._failure

    def request_stop(self) -> None:
        """Drain: sources end their streams; a second request aborts."""
        self._signals += 1
        if self._signals == 1:
            log.warning("stopping: draining the pipeline (press Ctrl-C again to abort)")
            self.drain()
        else:
            log.warning("aborting")
            self.abort.set()

    def drain(self) -> None:
        """Sources end their streams and the graph drains, as on a first Ctrl-C, but not counted as
        one (`interrupted`): for a job that has nothing left to run. Idempotent."""
        if not self.stop_sources.is_set():
            self.stop_sources.set()
            self._drain_deadline = time.monotonic() + self._drain_timeout_s

    def request_stop_threadsafe(self) -> None:
        """request_stop() from any thread: the loop makes it on its own thread."""
        self._wake_w.send_bytes(b"s")

    def call_soon_threadsafe(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run `fn` on the supervisor's thread (where add_process and the job's callbacks run);
        its result or exception arrives in the Future (an error once the loop has ended)."""
        future = self._calls.submit(fn)
        self._wake_w.send_bytes(b"c")
        return future

    @property
    def interrupted(self) -> bool:
        return self._signals > 0

    def watch(self, conn: Any, on_ready: Callable[[], None]) -> None:
        """Call `on_ready()` from the loop whenever `conn` is readable; dropped once it raises
        EOFError/OSError (the other end is gone)."""
        self._watched[conn] = on_ready

    def unwatch(self, conn: Any) -> None:
        """Stop watching `conn` (before closing it: a closed connection cannot be waited on)."""
        self._watched.pop(conn, None)

    def on_restart(self, name: str, renew: Callable[[ProcSpec], ProcSpec]) -> None:
        """When the crashed process `name` is due to start again, start `renew(spec)` instead of
        `spec` (called on the supervisor's thread, after the back-off)."""
        self._renewals[name] = renew

    def add_process(self, tier: str, spec: ProcSpec) -> bool:
        """Start `spec` in the running tier named `tier` (False once the graph is stopping).
        Call from the supervisor's thread: on_event or a watched connection's callback."""
        if self.stop_sources.is_set() or self.abort.is_set() or self._failure is not None:
            return False
        ts = next(ts for ts in self._tiers if ts.tier.name == tier)
        ts.waiting.append(spec)
        self._start_ready()
        return True

    def running(self, name: str) -> bool:
        """Whether the process `name` runs, waits to start, or waits to be restarted."""
        return any(
            name in (*(p.name for p in ts.running.values()), *(s.name for s in ts.waiting),
                     *(s.name for _, s in ts.restarting))
            for ts in self._tiers
        )

    # -- loop ---------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        self._wake_w.send_bytes(b"s")

    def _step(self) -> None:
        sentinels = [s for ts in self._tiers for s in ts.running]
        waited = [*sentinels, readable_end(self._events), self._wake_r, *self._watched]
        ready = wait(waited, timeout=self._next_timeout())
        if self._wake_r in ready:
            while self._wake_r.poll():
                if self._wake_r.recv_bytes() == b"s":
                    self.request_stop()
        self._calls.run()
        self._drain_events()
        for conn in [c for c in self._watched if c in ready]:
            callback = self._watched.get(conn)  # (an earlier callback may have unwatched it)
            try:
                if callback is not None:
                    callback()
            except (EOFError, OSError):
                self._watched.pop(conn, None)
        for ts in self._tiers:
            for sentinel in [s for s in ts.running if s in ready]:
                self._reap(ts, ts.running.pop(sentinel), ts.specs.pop(sentinel))
        self._run_due()
        self._check_stalls()
        if self._drain_deadline is not None and time.monotonic() > self._drain_deadline:
            log.error("drain took longer than %.0f s: aborting", self._drain_timeout_s)
            self.abort.set()
            self._drain_deadline = None
        self._start_ready()

    def _check_stalls(self) -> None:
        """A process with no sign of life for stall_timeout_s is named; a restartable one is
        killed (and restarted by the crash path), any other stops the job."""
        if self._stalls is None or self._failure is not None:
            return
        running = {p.name: p for ts in self._tiers for p in ts.running.values()}
        counters = {name: self._heartbeats[name] for name in running if name in self._heartbeats}
        for name, seconds in self._stalls.stuck(counters):
            detail = f"stuck: no sign of life for {seconds:.0f} s (stopped, or blocked in a call that never returns)"
            log.error("stage %s is %s", name, detail)
            if any(ts.tier.restart is not None and running[name] in ts.running.values() for ts in self._tiers):
                running[name].kill()
            elif self._failure is None:
                self._failure = StageFailed(name, detail)

    def _drain_events(self) -> None:
        while readable_end(self._events).poll():
            _stage, event = self._events.get()
            if isinstance(event, StageFailure):
                if any(event.stage == s.name for ts in self._tiers if ts.tier.restart for s in ts.specs.values()):
                    self._stage_failures[event.stage] = event  # its restart (or the start limit) decides
                    log.warning("stage %s failed: %s", event.stage, event.detail)
                    log.debug("%s", event.traceback)
                elif self._failure is None:
                    self._failure = StageFailed(event.stage, event.detail, event.traceback)
                    # a user mistake (no card, bad weights...) is one line; a bug keeps its traceback in the log
                    level = logging.DEBUG if event.user_error else logging.ERROR
                    log.log(level, "stage %s failed:\n%s", event.stage, event.traceback)
            else:
                self._on_event(event)

    def _reap(self, ts: _TierState, proc: BaseProcess, spec: ProcSpec) -> None:
        proc.join()
        if proc.exitcode != 0:
            self._drain_events()  # its failure report, if it sent one, comes first
            if self._failure is None and not self.abort.is_set():
                code = proc.exitcode or 0
                how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
                if ts.tier.restart is not None and self._restart(ts, spec, ts.tier.restart, how):
                    return
                failure = self._stage_failures.pop(proc.name, None)
                self._failure = StageFailed(proc.name, failure.detail if failure else f"process died ({how})",
                                            failure.traceback if failure else "")
                log.error("stage %s died (%s)", proc.name, how)

    def _restart(self, ts: _TierState, spec: ProcSpec, policy: RestartPolicy, how: str) -> bool:
        """Schedule a restart of a crashed process (False: draining, or the start limit is hit)."""
        crashes = self._crashes.setdefault(spec.name, CrashLog(policy))
        now = time.monotonic()
        delay = None if self.stop_sources.is_set() else crashes.next_delay(now)
        if delay is None:
            if not self.stop_sources.is_set():
                log.error("stage %s crashed %d times within %.0f s: not restarted again",
                          spec.name, len(crashes.times), policy.window_s)
            return False
        repaired = self._repair(ts)
        failure = self._stage_failures.pop(spec.name, None)
        log.warning("stage %s died (%s): restart %d in %.1f s%s", spec.name, how, crashes.restarts, delay,
                    f" (freed the {', '.join(repaired)} it held)" if repaired else "")
        ts.restarting.append((now + delay, spec))
        self._reclaims.append(Reclaim(now + delay + policy.reclaim_after_s, now))
        self._on_event(StageRestarted(spec.name, crashes.restarts, how, delay, failure.detail if failure else ""))
        return True

    def _repair(self, ts: _TierState) -> list[str]:
        """Free the locks a dead process of `ts` may have held (see pipeline.recovery)."""
        i = self._tiers.index(ts)
        outbox = self._tiers[i + 1].tier.inbox if i + 1 < len(self._tiers) else None
        return repair_locks(ts.tier.inbox, bool(ts.running), outbox, self._rings, self._events, self._log_queue)

    def _next_timeout(self) -> float:
        due = [t for ts in self._tiers for t, _ in ts.restarting] + [r.due for r in self._reclaims]
        return max(0.0, min([1.0, *(t - time.monotonic() for t in due)]))

    def _run_due(self) -> None:
        """Start the restarts whose back-off is over; reclaim what crashed processes held."""
        now = time.monotonic()
        for r in [r for r in self._reclaims if r.due <= now]:
            self._reclaims.remove(r)
            reclaim_rings(self._rings, r.taken_before)
        if self._failure is not None or self.abort.is_set():
            return
        for ts in self._tiers:
            if self._is_first(ts) and self.stop_sources.is_set():
                ts.restarting.clear()  # draining: a source is not brought back
            due = [spec for t, spec in ts.restarting if t <= now]
            ts.restarting = [(t, s) for t, s in ts.restarting if t > now]
            for spec in due:
                renew = self._renewals.get(spec.name)
                self._spawn(ts, renew(spec) if renew is not None else spec)

    def _start_ready(self) -> None:
        if self._failure is not None or self.abort.is_set():
            return
        previous_done = True
        for ts in self._tiers:
            if ts.tier.inbox is not None and previous_done and not self._is_first(ts):
                self._send_stops(ts, ts.tier.inbox)
            limit = ts.tier.max_running or len(ts.waiting) + len(ts.running)
            while ts.waiting and len(ts.running) < limit and not (self._is_first(ts) and self.stop_sources.is_set()):
                self._spawn(ts, ts.waiting.pop(0))
            if self._is_first(ts) and self.stop_sources.is_set():
                ts.waiting.clear()
            previous_done = (not ts.waiting and not ts.running and not ts.restarting
                             and not (ts.tier.open and not self.stop_sources.is_set()))

    def _send_stops(self, ts: _TierState, inbox: Channel) -> None:
        # Never block here: a full inbox whose consumer died must not hang the supervisor;
        # what does not fit now is sent on a later step.
        while ts.stops_sent < len(ts.tier.procs) and inbox.try_put(STOP, timeout=0.05):
            ts.stops_sent += 1

    def _is_first(self, ts: _TierState) -> bool:
        return ts is self._tiers[0]

    def _spawn(self, ts: _TierState, spec: ProcSpec) -> None:
        heartbeat = self._heartbeats[spec.name] = new_counter(self._ctx)
        if self._stalls is not None:
            self._stalls.forget(spec.name)
        sctx = StageContext(spec.name, self.abort, self.stop_sources, self._events, heartbeat)
        proc = self._ctx.Process(  # type: ignore[attr-defined]
            target=run_stage,
            args=(sctx, spec.stage, self._log_queue, self._log_level),
            name=spec.name,
            daemon=False,
        )
        with signals_blocked():  # a Ctrl-C now is the supervisor's, delivered when start() returns
            proc.start()
        ts.running[proc.sentinel] = proc
        ts.specs[proc.sentinel] = spec

    def _any_running(self) -> bool:
        return any(ts.running or ts.waiting or ts.restarting for ts in self._tiers)

    # -- teardown -----------------------------------------------------------------------------
    def _teardown(self) -> None:
        """Idempotent and ordered: abort -> join -> terminate -> kill -> unlink."""
        procs = [p for ts in self._tiers for p in ts.running.values()]
        if procs:
            self.abort.set()
            self._join_all(procs, 3.0)
            forced = [p for p in procs if p.is_alive()]
            for how in ("terminate", "kill"):
                alive = [p for p in procs if p.is_alive()]
                for p in alive:
                    getattr(p, how)()
                self._join_all(alive, 2.0)
            if forced and (repaired := repair_locks(None, False, None, (), self._events, self._log_queue)):
                log.warning("freed the %s a killed stage held", ", ".join(repaired))
            for ts in self._tiers:
                ts.running.clear()
        for ts in self._tiers:
            ts.restarting.clear()
        self._drain_events()
        for ch in self._channels:
            ch.abandon()
            ch.close()
        self._events.cancel_join_thread()
        self._events.close()
        for ring in self._rings:
            ring.close()
            ring.unlink()
        self._rings.clear()

    @staticmethod
    def _join_all(procs: Sequence[BaseProcess], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))

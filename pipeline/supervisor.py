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
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from pipeline.channels import STOP, Channel
from pipeline.errors import StageFailed
from pipeline.events import Event, StageFailure
from pipeline.shm import SlotRing
from pipeline.stage import Stage, StageContext, run_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcSpec:
    """One stage process: `stage.run(ctx)` runs in it (the stage pickles under spawn)."""

    name: str
    stage: Stage[Any]


@dataclass(frozen=True)
class Tier:
    name: str
    procs: tuple[ProcSpec, ...]
    inbox: Channel | None = None  # gets one STOP per process when the previous tier is done
    max_running: int = 0  # 0: start all at once


@dataclass
class _TierState:
    tier: Tier
    waiting: list[ProcSpec]
    running: dict[int, BaseProcess] = field(default_factory=dict)  # sentinel -> process
    stops_sent: int = 0


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
        abort: Any = None,
    ) -> None:
        self._ctx = ctx
        self._tiers = [_TierState(t, list(t.procs)) for t in tiers]
        self._rings = list(rings)
        self._channels = list(channels)
        self._on_event = on_event
        self._log_queue = log_queue
        self._log_level = log_level
        self._drain_timeout_s = drain_timeout_s
        self.abort = abort if abort is not None else ctx.Event()  # shared with the channels
        self.stop_sources = ctx.Event()
        self._events: Any = ctx.Queue()
        self._wake_r, self._wake_w = ctx.Pipe(duplex=False)
        self._failure: StageFailed | None = None
        self._drain_deadline: float | None = None
        self._signals = 0

    # -- public -------------------------------------------------------------------------------
    def run(self) -> None:
        """Run the graph to completion. Raises StageFailed (after cleanup) if a stage failed."""
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._start_ready()
            while self._any_running() and self._failure is None:
                self._step()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            self._teardown()
        if self._failure is not None:
            raise self._failure

    def request_stop(self) -> None:
        """Drain: sources end their streams; a second request aborts."""
        self._signals += 1
        if self._signals == 1:
            log.warning("stopping: draining the pipeline (press Ctrl-C again to abort)")
            self.stop_sources.set()
            self._drain_deadline = time.monotonic() + self._drain_timeout_s
        else:
            log.warning("aborting")
            self.abort.set()

    @property
    def interrupted(self) -> bool:
        return self._signals > 0

    # -- loop ---------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        self._wake_w.send_bytes(b"s")

    def _step(self) -> None:
        sentinels = [s for ts in self._tiers for s in ts.running]
        ready = wait([*sentinels, self._events._reader, self._wake_r], timeout=1.0)
        if self._wake_r in ready:
            while self._wake_r.poll():
                self._wake_r.recv_bytes()
                self.request_stop()
        self._drain_events()
        for ts in self._tiers:
            for sentinel in [s for s in ts.running if s in ready]:
                self._reap(ts, ts.running.pop(sentinel))
        if self._drain_deadline is not None and time.monotonic() > self._drain_deadline:
            log.error("drain took longer than %.0f s: aborting", self._drain_timeout_s)
            self.abort.set()
            self._drain_deadline = None
        self._start_ready()

    def _drain_events(self) -> None:
        while self._events._reader.poll():
            _stage, event = self._events.get()
            if isinstance(event, StageFailure):
                if self._failure is None:
                    self._failure = StageFailed(event.stage, event.detail, event.traceback)
                    # a user mistake (no card, bad weights...) is one line; a bug keeps its traceback in the log
                    level = logging.DEBUG if event.user_error else logging.ERROR
                    log.log(level, "stage %s failed:\n%s", event.stage, event.traceback)
            else:
                self._on_event(event)

    def _reap(self, ts: _TierState, proc: BaseProcess) -> None:
        proc.join()
        if proc.exitcode != 0:
            self._drain_events()  # its failure report, if it sent one, comes first
            if self._failure is None and not self.abort.is_set():
                code = proc.exitcode or 0
                how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
                self._failure = StageFailed(proc.name, f"process died ({how})")
                log.error("stage %s died (%s)", proc.name, how)

    def _start_ready(self) -> None:
        if self._failure is not None or self.abort.is_set():
            return
        previous_done = True
        for ts in self._tiers:
            if ts.tier.inbox is not None and previous_done and not self._is_first(ts):
                self._send_stops(ts, ts.tier.inbox)
            limit = ts.tier.max_running or len(ts.tier.procs)
            while ts.waiting and len(ts.running) < limit and not (self._is_first(ts) and self.stop_sources.is_set()):
                self._spawn(ts, ts.waiting.pop(0))
            if self._is_first(ts) and self.stop_sources.is_set():
                ts.waiting.clear()
            previous_done = not ts.waiting and not ts.running

    def _send_stops(self, ts: _TierState, inbox: Channel) -> None:
        # Never block here: a full inbox whose consumer died must not hang the supervisor;
        # what does not fit now is sent on a later step.
        while ts.stops_sent < len(ts.tier.procs) and inbox.try_put(STOP, timeout=0.05):
            ts.stops_sent += 1

    def _is_first(self, ts: _TierState) -> bool:
        return ts is self._tiers[0]

    def _spawn(self, ts: _TierState, spec: ProcSpec) -> None:
        sctx = StageContext(spec.name, self.abort, self.stop_sources, self._events)
        proc = self._ctx.Process(  # type: ignore[attr-defined]
            target=run_stage,
            args=(sctx, spec.stage, self._log_queue, self._log_level),
            name=spec.name,
            daemon=False,
        )
        proc.start()
        ts.running[proc.sentinel] = proc

    def _any_running(self) -> bool:
        return any(ts.running or ts.waiting for ts in self._tiers)

    # -- teardown -----------------------------------------------------------------------------
    def _teardown(self) -> None:
        """Idempotent and ordered: abort -> join -> terminate -> kill -> unlink."""
        procs = [p for ts in self._tiers for p in ts.running.values()]
        if procs:
            self.abort.set()
            self._join_all(procs, 3.0)
            for how in ("terminate", "kill"):
                alive = [p for p in procs if p.is_alive()]
                for p in alive:
                    getattr(p, how)()
                self._join_all(alive, 2.0)
            for ts in self._tiers:
                ts.running.clear()
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

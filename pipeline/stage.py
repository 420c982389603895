"""The Stage base: what runs inside every stage process, and the rules a stage follows.

    class Doubler(Stage[DoublerParams]):
        def handle(self, item):            # one inbox item (markers never get here)
            self.emit(item * 2)            # queued, sent with the rest of this inbox batch

A stage is a subclass with one typed, frozen parameter dataclass (`self.params`), an inbox and an
outbox (bounded Channels, or None for a source / a sink). `run()` drives its lifecycle:

    open()                      acquire resources (a device, a capture, a server). May block.
    loop                        inbox stages: for each inbox batch (the items one put_many sent),
        handle_batch(items)       handle(item) for each item the stage accepts (`accepts`); every
        flush()                   other item (stream markers...) is passed on in order; then what
                                  was emitted leaves as ONE queue item (batched puts).
                                  `poll_s()` seconds without input: on_idle() (batch deadlines).
                                Source stages (no inbox) override `produce()` instead.
    finish()                    on STOP (end of stream, not on abort): flush what is held.
    close()                     always, in reverse order of open: release everything. Must not
                                block for long; outputs are finalized so files stay playable.

Rules, as Bytewax's inputs.py writes them for its sources:
* May block: `open()`, `handle()` on a full outbox or a free slot (`acquire()`), a source's
  `produce()` on its input. Every blocking wait wakes on abort (Channel/SlotRing poll it).
* On abort (a stage failed, a second Ctrl-C) `Aborted` unwinds the loop at its next wait:
  `finish()` is skipped, `close()` still runs. On STOP `finish()` runs, then `close()`.
* A stage never sleeps to synchronise: it waits on its inbox, a slot or an event with a timeout.

`run_stage` is the process entry point the supervisor starts: SIGINT is ignored (the supervisor
coordinates Ctrl-C), logs go to the main process, and any exception reaches the supervisor as a
`StageFailure` event with its traceback text (as concurrent.futures does with _RemoteTraceback)
before the process exits non-zero. `pipeline.testing` runs a stage in-process instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from vidpipe.pipeline import watchdog
from vidpipe.pipeline.channels import Aborted, Channel, Stop
from vidpipe.pipeline.errors import VidpipeError, one_line
from vidpipe.pipeline.events import Event, StageFailure
from vidpipe.pipeline.flags import Flag
from vidpipe.pipeline.logs import enable_stack_dumps, setup_stage_logging
from vidpipe.pipeline.shm import SlotRing

log = logging.getLogger(__name__)

P = TypeVar("P")


@dataclass(frozen=True)
class StageContext:
    """What every stage gets from the supervisor: its name, the graph's events and the event queue."""

    name: str
    abort: Flag  # tear down now: return as soon as possible
    stop_sources: Flag  # drain: sources end their streams, everything else finishes its work
    events: Any  # multiprocessing Queue to the supervisor (unbounded, small messages)
    heartbeat: Any = None  # shared counter this process beats (pipeline.watchdog); None: not watched

    def report(self, event: Event) -> None:
        """Send a typed event (progress, a source's problem, a stream done...) to the supervisor."""
        self.events.put((self.name, event))


class Stage(Generic[P]):
    """Base of every stage process; see the module docstring for the lifecycle and its rules."""

    accepts: tuple[type, ...] = (object,)  # inbox items handle() gets; others are passed on

    def __init__(self, params: P, inbox: Channel | None = None, outbox: Channel | None = None) -> None:
        self.params = params
        self.inbox = inbox
        self.outbox = outbox
        self._pending: list[Any] = []
        self._ctx: StageContext | None = None

    # -- the lifecycle a subclass fills in ---------------------------------------------------
    def open(self) -> None:
        """Acquire resources. May block."""

    def handle(self, item: Any) -> None:
        """One accepted inbox item. May block (outbox, slots)."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle() or produce()")

    def handle_batch(self, items: Sequence[Any]) -> None:
        """Items that travelled together; by default handle() each accepted one, pass the rest on."""
        for item in items:
            if isinstance(item, self.accepts):
                self.handle(item)
            else:
                self.emit(item)

    def poll_s(self) -> float | None:
        """How long to wait for input before on_idle() (None: until input or abort)."""
        return None

    def on_idle(self) -> None:
        """No input for poll_s() seconds."""

    def produce(self) -> None:
        """Source stages (no inbox): emit items until the input ends or `stopping` is set."""
        raise NotImplementedError(f"{type(self).__name__} has no inbox and must implement produce()")

    def finish(self) -> None:
        """End of stream (STOP): hand on everything still held. Skipped on abort."""

    def close(self) -> None:
        """Release everything; runs on every exit, abort included."""

    # -- what a subclass uses -----------------------------------------------------------------
    @property
    def ctx(self) -> StageContext:
        assert self._ctx is not None, "the stage is not running"
        return self._ctx

    @property
    def stopping(self) -> bool:
        """Ctrl-C: sources end their streams now (the rest of the graph drains)."""
        return self.ctx.stop_sources.is_set()

    def aborted(self) -> bool:
        """The graph is going down, or the supervisor is gone (checked through a channel)."""
        watchdog.beat()
        channel = self.outbox or self.inbox
        return self.ctx.abort.is_set() or (channel is not None and channel.aborted())

    def emit(self, item: Any) -> None:
        """Queue `item` for the outbox; it leaves with the next flush()."""
        self._pending.append(item)

    @property
    def held(self) -> int:
        """Items emitted and not yet sent."""
        return len(self._pending)

    def flush(self) -> None:
        """Send what was emitted, in order, as one queue item. May block on a full outbox."""
        if self._pending and self.outbox is not None:
            items, self._pending = self._pending, []
            self.outbox.put_many(items)
        self._pending.clear()

    def send(self, item: Any) -> None:
        """Emit and flush at once (live items: no batching latency)."""
        self.emit(item)
        self.flush()

    def acquire(self, ring: SlotRing) -> int:
        """A free slot of `ring`; if none is free, flush first: held items must not keep the rest
        of the graph from freeing slots (acquire-or-flush). Blocks until a slot or abort."""
        self._check_aborted()
        slot = ring.acquire(timeout=0)
        if slot is None:
            self.flush()
            slot = ring.acquire_or_abort(self.aborted)
        return slot

    def report(self, event: Event) -> None:
        self.ctx.report(event)

    def _check_aborted(self) -> None:
        """A flowing graph never times out in a wait, where aborts are noticed: look here too."""
        if self.aborted():
            raise Aborted(f"{self.ctx.name}: aborted")

    def abandon_queues(self) -> None:
        """On abort: exit without waiting to flush what was put (its reader may be gone)."""
        for channel in (self.inbox, self.outbox):
            if channel is not None:
                channel.abandon()

    # -- the driver ---------------------------------------------------------------------------
    def run(self, ctx: StageContext) -> None:
        """open -> loop -> finish (on STOP) -> close (always)."""
        self._ctx = ctx
        try:
            self.open()
            if self.inbox is None:
                self.produce()
            elif not self._inbox_loop(self.inbox):
                return
            self.finish()
            self.flush()
        finally:
            self.close()

    def _inbox_loop(self, inbox: Channel) -> bool:
        """Until STOP (True). Items after a STOP in the same batch cannot exist: STOP comes last."""
        while True:
            try:
                items = inbox.get_many(timeout=self.poll_s())
            except queue.Empty:
                watchdog.beat()
                self.on_idle()
                continue
            self._check_aborted()
            stop = bool(items) and isinstance(items[-1], Stop)
            self.handle_batch(items[:-1] if stop else items)
            self.flush()
            if stop:
                return True


def run_stage(ctx: StageContext, stage: Stage[Any], log_queue: Any, log_level: int) -> None:
    """Process entry point: run `stage` and report how it ended.

    A terminal's Ctrl-C and a service manager's SIGTERM reach the whole process group: the
    supervisor alone handles them (it drains the graph). The supervisor starts this process with
    both signals blocked (`signals_blocked`), so that one arriving while Python starts up is not
    a KeyboardInterrupt traceback here; once they are ignored, they are unblocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    watchdog.install(ctx.heartbeat)
    enable_stack_dumps()
    _name_process(ctx.name)
    setup_stage_logging(log_queue, log_level)
    parent = os.getppid()
    code = 0
    try:
        stage.run(ctx)
    except Aborted:
        log.debug("aborted")
        stage.abandon_queues()
    except BaseException as exc:
        user_error = isinstance(exc, VidpipeError)
        ctx.report(StageFailure(ctx.name, one_line(exc), traceback.format_exc(), user_error))
        code = 1
    finally:
        if os.getppid() != parent:  # the supervisor is gone (kill -9): nobody reads our queues
            stage.abandon_queues()
            for q in (ctx.events, log_queue):
                if q is not None:
                    q.cancel_join_thread()
        ctx.events.close()
        ctx.events.join_thread()  # the failure report must reach the supervisor before exit
    sys.exit(code)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM held back in this thread (delivered after, not lost): a child started
    meanwhile inherits the blocked mask, across exec too (see run_stage)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _name_process(name: str) -> None:
    """Show the stage name in ps/top (Linux comm, 15 characters), e.g. `vp:preprocess-1`."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, f"vp:{name}".encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass  # not Linux: names are cosmetic

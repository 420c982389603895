"""A job running inside the caller's Python process, for the API (stages.jobs.api).

    run = JobRun(job, run_job).start()     # the graph runs on a thread of this process
    run.status()                           # JobStatus: state, frames, videos
    run.stop()                             # drain (as Ctrl-C does), from any thread
    run.join(timeout)                      # True once it ended; raises the job's error, if any

The supervisor runs on the job's thread; it installs no signal handlers there (only the main
thread may). A Ctrl-C in the caller's thread while it waits in `join` or iterates drains the job,
waits for its outputs to be finalized, and is raised again; a second Ctrl-C aborts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from vidpipe.pipeline.events import Event
from vidpipe.pipeline.logs import StageLogForwarder
from vidpipe.stages.events import Progress, StreamDone
from vidpipe.stages.jobs.base import Job
from vidpipe.stages.jobs.feed import CallerJob

Runner = Callable[[Any, Any, int], int]  # (job, log queue, log level) -> exit code


@dataclass(frozen=True)
class JobStatus:
    """What a running job is doing. `state`: created, running, stopping, done, failed."""

    state: str
    frames: int  # frames labeled so far, every stream
    streams_done: int  # videos (or live streams) finished
    streams_open: int
    exit_code: int | None  # once done
    error: str = ""  # once failed: one line


class JobRun:
    """See the module docstring. `on_event` (the caller's, must not block) sees every event."""

    def __init__(self, job: Job, runner: Runner, log_level: int,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.job = job
        self.caller = CallerJob(job, self._event)
        self._runner, self._log_level, self._on_event = runner, log_level, on_event
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._stopping = False
        self._exit_code: int | None = None
        self._error: BaseException | None = None
        self._progress: dict[str, int] = {}
        self._finished: set[str] = set()

    def start(self) -> Self:
        """Start the job's thread (once; later calls do nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vidpipe-job", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Drain: sources end, what is under way is labeled and written; a second stop aborts."""
        self._stopping = True
        self.caller.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the end (True), or `timeout` seconds (False). Raises the job's error."""
        if self._thread is None:
            raise RuntimeError("the job was not started: call start() first")
        try:
            ended = self._done.wait(timeout)
        except KeyboardInterrupt:
            self._drain_after_interrupt()
            raise
        if ended and self._error is not None:
            raise self._error
        return ended

    @property
    def exit_code(self) -> int | None:
        """0 ok, 1 an input or stage failed, 2 a configuration mistake, 130 stopped; None while running."""
        return self._exit_code

    def status(self) -> JobStatus:
        state = ("failed" if self._error is not None else "done") if self._done.is_set() else \
            "stopping" if self._stopping else "running" if self._thread is not None else "created"
        return JobStatus(state, sum(self._progress.values()), len(self._finished),
                         len(set(self._progress) - self._finished), self._exit_code,
                         str(self._error) if self._error is not None else "")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if not self._done.is_set():
            self.stop()
        if self._thread is not None:
            self._done.wait()

    # -- the job's thread ---------------------------------------------------------------------
    def _run(self) -> None:
        logs = StageLogForwarder()
        try:
            self._exit_code = self._runner(self.caller, logs.queue, self._log_level)
        except BaseException as exc:  # raised to the caller by join()
            self._error = exc
            self._exit_code = getattr(exc, "exit_code", None) or 1
        finally:
            logs.close()
            try:
                self._ended()
            finally:
                self._done.set()

    def _ended(self) -> None:
        """On the job's thread once the job is over, before join() returns: subclasses sum up."""

    def _event(self, event: Event) -> None:
        if isinstance(event, Progress):
            self._progress[event.stream] = event.done
        elif isinstance(event, StreamDone):
            self._progress[event.stream] = event.frames
            self._finished.add(event.stream)
        if self._on_event is not None:
            self._on_event(event)

    def _drain_after_interrupt(self) -> None:
        """A Ctrl-C in the caller's thread: drain the job and wait for its outputs to be final."""
        self.stop()
        try:
            self._done.wait()
        except KeyboardInterrupt:  # a second Ctrl-C: abort, then wait for the teardown
            self.stop()
            self._done.wait()

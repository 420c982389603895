"""The process side of a stage: what runs inside every stage process.

A stage target is a top-level function `target(ctx: StageContext, *args)`; it loops over its
inbox until it takes a STOP, and uses try/finally so its outputs are closed even on abort.
`run_stage` wraps it: SIGINT is ignored (the supervisor coordinates Ctrl-C), logs go to the main
process, and any exception is sent to the supervisor as a `failed` event with its traceback text
(as concurrent.futures does with _RemoteTraceback) before the process exits non-zero.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any

from pipeline.channels import Aborted
from pipeline.errors import VidpipeError
from pipeline.logs import setup_stage_logging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageContext:
    """What every stage gets: its name, the graph's abort/stop events and the event queue."""

    name: str
    abort: Event  # tear down now: return as soon as possible
    stop_sources: Event  # drain: sources end their streams, everything else finishes its work
    events: Any  # multiprocessing Queue to the supervisor (unbounded, small messages)

    def report(self, kind: str, **data: Any) -> None:
        """Send an event (progress, source error, stats...) to the supervisor."""
        self.events.put((kind, self.name, data))


def run_stage(
    ctx: StageContext,
    target: Callable[..., None],
    args: tuple[Any, ...],
    log_queue: Any,
    log_level: int,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _name_process(ctx.name)
    setup_stage_logging(log_queue, log_level)
    code = 0
    try:
        target(ctx, *args)
    except Aborted:
        log.debug("aborted")
    except BaseException as exc:
        detail = str(exc) if isinstance(exc, VidpipeError) else f"{type(exc).__name__}: {exc}"
        ctx.report("failed", detail=detail, traceback=traceback.format_exc(), user_error=isinstance(exc, VidpipeError))
        code = 1
    finally:
        ctx.events.close()
        ctx.events.join_thread()  # the failure report must reach the supervisor before exit
    sys.exit(code)


def _name_process(name: str) -> None:
    """Show the stage name in ps/top (Linux comm, 15 characters), e.g. `vp:preprocess-1`."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, f"vp:{name}".encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass  # not Linux: names are cosmetic

"""One log stream for every process (multiprocessing-logging), the stage name on each line.

The main process wraps its stderr handler in multiprocessing_logging's MultiProcessingHandler,
whose queue collects records from every stage; stage processes (fork or spawn) send to that queue
through a QueueHandler. Credentials in URLs are masked before a line is written.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import logging
import logging.handlers
import multiprocessing
import signal
import sys
from typing import Any

from multiprocessing_logging import MultiProcessingHandler

from vidpipe.pipeline.redact import mask_url

FORMAT = "%(asctime)s %(levelname)-7s [%(processName)s] %(message)s"


class _MaskCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = mask_url(str(record.msg))
        return True


def enable_stack_dumps() -> None:
    """`kill -USR1 PID` prints every thread's stack to stderr: where a hung job or stage waits."""
    with contextlib.suppress(AttributeError, ValueError, RuntimeError, io.UnsupportedOperation):  # no stderr
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__ or sys.stderr, all_threads=True)


def setup_main_logging(level: int = logging.INFO) -> Any:
    """Install the shared handler in the main process; returns the queue stages log into."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    stream = logging.StreamHandler()
    stream.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    stream.addFilter(_MaskCredentials())
    mp_handler = MultiProcessingHandler("vidpipe-log", sub_handler=stream)
    # Its queue comes from the default (fork) context, whose locks cannot be handed to spawned
    # stages; a spawn-context queue works under every start method. The receiver thread reads
    # `handler.queue` afresh on each get, so swapping it here is seen within one get timeout.
    mp_handler.queue = multiprocessing.get_context("spawn").Queue(-1)
    mp_handler.setLevel(level)
    root.addHandler(mp_handler)
    root.setLevel(level)
    return mp_handler.queue


def setup_stage_logging(log_queue: Any, level: int) -> None:
    """In a stage process: every record goes to the main process's handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if log_queue is not None:
        root.addHandler(logging.handlers.QueueHandler(log_queue))
    root.setLevel(level)


def shutdown_main_logging() -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()  # MultiProcessingHandler.close waits (up to 5 s) for the queue to empty
        if isinstance(handler, MultiProcessingHandler):
            # what did not get through by now never will (a killed stage held the queue's lock):
            # the interpreter's exit must not wait for it
            handler.queue.cancel_join_thread()


class StageLogForwarder:
    """For vidpipe used as a library: stage processes log into `queue`, and each record is handed
    to the caller's own logging (the logger of its name), leaving the caller's handlers as they
    are (setup_main_logging, for the CLI, replaces them). `close()` drains and stops it."""

    def __init__(self) -> None:
        self.queue: Any = multiprocessing.get_context("spawn").Queue(-1)
        self._listener = logging.handlers.QueueListener(self.queue, _Reemit(), respect_handler_level=False)
        self._listener.start()

    def close(self) -> None:
        self._listener.stop()  # takes what was sent before this; stages have ended by now
        self.queue.close()
        self.queue.cancel_join_thread()


class _Reemit(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)

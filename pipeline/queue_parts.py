"""What the supervisor needs of a multiprocessing.Queue that the standard library does not expose,
named in this one module:

    readable_end(q)   the read end of its pipe: multiprocessing.connection.wait() takes it, so the
                      supervisor sleeps until an event arrives or a process ends (one wait, no poll)
    reader_lock(q)    the process-shared locks of its readers and writers: a process killed while
    writer_lock(q)    it held one leaves it held, and recovery must free it (pipeline.recovery)

CPython's Queue has kept them as `_reader`, `_rlock` and `_wlock` since Python 3.4 (3.11-3.13
here); tests/pipeline/test_queue_parts.py checks them on the running interpreter, so a Python that
changes them fails there, by name, not in the middle of a recovery.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from typing import Any


def readable_end(q: Any) -> Connection:
    reader: Connection = q._reader
    return reader


def reader_lock(q: Any) -> Any:
    """None for a queue whose readers share no lock (a SimpleQueue on some platforms)."""
    return q._rlock


def writer_lock(q: Any) -> Any:
    return q._wlock

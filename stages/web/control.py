"""The control link between the live view's HTTP API (sink process) and the live job (main
process, where the supervisor starts and stops processes): one duplex Pipe.

    sink: HTTP handler --Request(id, AddStream | RemoveStream | ListStreams)--> main: LiveJob
    sink: ControlClient <--Reply(id, code, body)------------------------------- (on the supervisor's
                        <--Notice(event), e.g. StageRestarted----------------    thread, via watch())

The main end is watched by the supervisor's one `connection.wait` (Supervisor.watch); the sink end
is read by one thread of ControlClient, which hands replies to the waiting HTTP handler threads
and notices to a callback. Messages are small frozen dataclasses (pickled by the Pipe). A sink
restarted after a crash gets a new link (stages.jobs.live): the dead one may have left half a
message, or unread replies and notices, in the old one.
May block: request() until its reply or its timeout; close() until the reader thread returns
(it wakes at once).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from vidpipe.stages.config import SourceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AddStream:
    source: SourceSettings


@dataclass(frozen=True)
class RemoveStream:
    name: str


@dataclass(frozen=True)
class ListStreams:
    pass


@dataclass(frozen=True)
class Request:
    id: int
    body: AddStream | RemoveStream | ListStreams


@dataclass(frozen=True)
class Reply:
    id: int
    code: int  # the HTTP status the API answers with
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """Something the job tells the sink without being asked (a restarted stage...)."""

    event: Any


class ControlClient:
    """The sink's end: thread-safe request(); notices go to `on_notice` (reader thread)."""

    def __init__(self, conn: Connection, on_notice: Callable[[Any], None]) -> None:
        self._conn = conn
        self._on_notice = on_notice
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies: dict[int, Reply] = {}
        self._waiting: set[int] = set()
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._read, name="live-control", daemon=True)
        self._thread.start()

    def request(self, body: AddStream | RemoveStream | ListStreams, timeout: float = 10.0) -> Reply:
        """The job's reply; 503 when the job does not answer (stopping, gone) within `timeout`."""
        rid = next(self._ids)
        with self._cond:
            if self._closed:
                return Reply(rid, 503, {"error": "the pipeline is stopping"})
            self._waiting.add(rid)
        try:
            with self._send_lock:
                self._conn.send(Request(rid, body))
            with self._cond:
                self._cond.wait_for(lambda: rid in self._replies or self._closed, timeout)
                reply = self._replies.pop(rid, None)
        except OSError:
            reply = None
        finally:
            with self._cond:
                self._waiting.discard(rid)
        return reply or Reply(rid, 503, {"error": "the pipeline did not answer (stopping?)"})

    def _read(self) -> None:
        try:
            while True:
                ready = wait([self._conn, self._wake_r])
                if self._wake_r in ready:
                    return
                msg = self._conn.recv()
                if isinstance(msg, Reply):
                    with self._cond:
                        if msg.id in self._waiting:  # a reply that came after its timeout is dropped
                            self._replies[msg.id] = msg
                        self._cond.notify_all()
                elif isinstance(msg, Notice):
                    self._on_notice(msg.event)
        except (EOFError, OSError):
            pass  # the main process is gone: requests answer 503 from now on
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5.0)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._conn.close()

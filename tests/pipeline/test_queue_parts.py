"""The parts of multiprocessing.Queue that vidpipe's supervisor uses (pipeline.queue_parts) are
there on this Python and behave as recovery assumes."""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import wait

from vidpipe.pipeline.queue_parts import readable_end, reader_lock, writer_lock


def test_a_queue_has_the_parts_the_supervisor_uses() -> None:
    q = multiprocessing.get_context("spawn").Queue()
    try:
        assert wait([readable_end(q)], timeout=0.05) == []  # nothing to read: the wait times out
        q.put("event")
        assert wait([readable_end(q)], timeout=5.0) == [readable_end(q)]  # an item wakes the waiter
        assert q.get(timeout=5.0) == "event"
        for lock in (reader_lock(q), writer_lock(q)):
            assert lock.acquire(timeout=0.1)  # free, and process-shared locks recovery can take and free
            assert not lock.acquire(timeout=0.05)
            lock.release()
    finally:
        q.close()
        q.join_thread()

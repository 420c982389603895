"""Channel batches: items put together travel as one queue item and come out one by one, in order."""

from __future__ import annotations

import multiprocessing
import queue

import pytest

from vidpipe.pipeline.channels import STOP, Channel, Stop
from vidpipe.pipeline.flags import SharedFlag


def _producer(ch: Channel, batches: int, size: int) -> None:
    for b in range(batches):
        ch.put_many([b * size + i for i in range(size)])
    ch.put("end")


def test_put_many_is_one_queue_item_handed_out_in_order() -> None:
    ctx = multiprocessing.get_context("spawn")
    ch = Channel(ctx, "t", 4, SharedFlag(ctx))
    try:
        ch.put_many([1, 2, 3])
        ch.put_many([])  # nothing
        ch.put_many([4])  # a single item stays single
        ch.put(5)
        ch.put_many([6, 7])
        assert ch.get(timeout=5) == 1  # unpacks the batch...
        assert ch.get_many(timeout=5) == [2, 3]  # ...and get_many returns the rest of it
        assert ch.get_many(timeout=5) == [4]
        assert ch.get(timeout=5) == 5
        assert ch.get(timeout=5) == 6
        assert ch.get_nowait() == 7  # the rest of a batch already taken: no wait for the pipe
        with pytest.raises(queue.Empty):
            ch.get(timeout=0.05)
    finally:
        ch.close()


def test_batches_cross_processes_in_order(start_method: str) -> None:
    ctx = multiprocessing.get_context(start_method)
    ch = Channel(ctx, "t", 2, SharedFlag(ctx))  # smaller than the batches sent: back-pressure per batch
    proc = ctx.Process(target=_producer, args=(ch, 50, 8))
    proc.start()
    try:
        got = []
        while (item := ch.get(timeout=30)) != "end":
            got.append(item)
        assert got == list(range(400))
    finally:
        proc.join(10)
        ch.close()
    assert proc.exitcode == 0


def test_stop_after_a_batch_is_seen_after_every_item_of_it() -> None:
    ctx = multiprocessing.get_context("spawn")
    ch = Channel(ctx, "t", 4, SharedFlag(ctx))
    try:
        ch.put_many(["a", "b"])
        ch.put(STOP)
        assert [ch.get(timeout=5) for _ in range(2)] == ["a", "b"]
        assert isinstance(ch.get(timeout=5), Stop)
    finally:
        ch.close()

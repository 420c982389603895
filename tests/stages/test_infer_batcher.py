"""The infer batcher: while every buffer set is busy, tensors that arrive during the wait for the
oldest batch ride along in the next one (full batches keep the card's per-batch cost amortized)."""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable

import numpy as np

from tests.stages.fake_cards import HostCard
from vidpipe.hw.base import INPUT_SHAPE, TOP_K, BatchOutput
from vidpipe.hw.settings import BackendSettings
from vidpipe.pipeline.channels import STOP, Channel
from vidpipe.pipeline.flags import SharedFlag
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.stage import StageContext
from vidpipe.stages.descriptors import FrameRef, LabelInfo, Result, TensorRef
from vidpipe.stages.infer import InferParams, InferStage


class FakeCard(HostCard):
    """Records batch sizes; wait() runs a hook first (tensors arriving while the host waits)."""

    def __init__(self, max_batch: int, on_wait: Callable[[int], None]) -> None:
        super().__init__(max_batch)
        self.on_wait = on_wait
        self.started: list[int] = []
        self.sizes: dict[int, int] = {}

    def start(self, k: int, n: int) -> None:
        self.started.append(n)
        self.sizes[k] = n

    def wait(self, k: int) -> BatchOutput:
        self.on_wait(k)
        n = self.sizes.pop(k)
        return BatchOutput(np.zeros((n, TOP_K), np.uint32), None, 0.0, 0.001, 0.0)


def test_arrivals_during_the_wait_join_the_next_batch() -> None:
    ctx = multiprocessing.get_context("spawn")
    tensors = SlotRing(ctx, 32, int(np.prod(INPUT_SHAPE)), "tensors")
    inbox, out = Channel(ctx, "in", 64, SharedFlag(ctx)), Channel(ctx, "out", 64, SharedFlag(ctx))
    seq = iter(range(1000))

    def send(n: int) -> None:
        refs = []
        for _ in range(n):
            slot = tensors.acquire(1.0)
            assert slot is not None
            refs.append(TensorRef(FrameRef("s", next(seq), 0, 1, 1, 0.0, time.time()), slot, time.time()))
        inbox.put_many(refs)

    waits: list[int] = []

    def on_wait(k: int) -> None:
        waits.append(k)
        if len(waits) == 1:  # while the host waits for the first batch, 6 more tensors and the end arrive
            send(6)
            inbox.put(STOP)
            # In the graph they come from other processes and are in the pipe already; here the
            # queue's feeder thread must have written them before the stage looks.
            assert inbox._q._reader.poll(5)  # type: ignore[attr-defined]

    card = FakeCard(8, on_wait)
    settings = BackendSettings(name="sim", max_batch=8, batch_timeout_ms=1.0, buffer_sets=2)
    try:
        send(8)
        send(8)
        send(2)  # the third batch starts with 2; both sets are busy

        class InferOnFakeCard(InferStage):
            def make_backend(self) -> FakeCard:  # type: ignore[override]
                return card

        stage = InferOnFakeCard(InferParams(settings, 0, tensors), inbox, out)
        stage.run(StageContext("infer-0", SharedFlag(ctx), SharedFlag(ctx), queue.Queue()))
        assert card.started == [8, 8, 8]  # not [8, 8, 2, 6]
        assert isinstance(out.get(timeout=5), LabelInfo)  # first, before any result
        results = [out.get(timeout=5) for _ in range(24)]
        assert all(isinstance(r, Result) for r in results)
        assert sorted(r.frame.seq for r in results) == list(range(24))
        assert tensors.free_count() == 32  # every tensor slot released after its copy
    finally:
        for ch in (inbox, out):
            ch.close()
        tensors.close()
        tensors.unlink()

"""The infer stage's InferStats: batch sizes and the time a batch was in flight, for the live metrics."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.stages.fake_cards import HostCard
from vidpipe.hw.base import TOP_K, BatchOutput
from vidpipe.hw.settings import BackendSettings
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.testing import ListChannel, run_inline
from vidpipe.stages import infer
from vidpipe.stages.descriptors import FrameRef, InferStats, Result, TensorRef
from vidpipe.stages.infer import InferParams, InferStage

CARD_S = 0.02  # each batch takes this long on the card


class SlowCard(HostCard):
    def __init__(self) -> None:
        super().__init__(4)
        self.running: dict[int, tuple[int, float]] = {}  # buffer set -> (images, when its compute ends)
        self.free_at = 0.0  # one compute unit: a batch starts when the one before it is done

    def start(self, k: int, n: int) -> None:
        self.free_at = max(time.monotonic(), self.free_at) + CARD_S
        self.running[k] = (n, self.free_at)

    def wait(self, k: int) -> BatchOutput:
        n, t_end = self.running.pop(k)
        time.sleep(max(0.0, t_end - time.monotonic()))  # the card computes
        return BatchOutput(np.zeros((n, TOP_K), np.uint32), None, 0.0, CARD_S, 0.0)


class InferOnSlowCard(InferStage):
    def make_backend(self) -> SlowCard:
        return SlowCard()


def refs(ring: SlotRing, n: int) -> list[TensorRef]:
    out = []
    for i in range(n):
        slot = ring.acquire(1.0)
        assert slot is not None
        out.append(TensorRef(FrameRef("s", i, 0, 1, 1, 0.0, time.time()), slot, time.time()))
    return out


def test_batch_sizes_and_busy_time_are_reported(tensors: SlotRing, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infer, "STATS_INTERVAL_S", 0.0)  # a report with every batch
    settings = BackendSettings(name="sim", max_batch=4, batch_timeout_ms=1.0, buffer_sets=2)
    got = run_inline(InferOnSlowCard, InferParams(settings, 0, tensors), batches=[refs(tensors, 10)], name="infer-0")
    stats = [item for item in got.items if isinstance(item, InferStats)]
    assert sum(isinstance(item, Result) for item in got.items) == 10
    assert stats and {s.infer for s in stats} == {"infer-0"}
    sizes: dict[int, int] = {}
    for s in stats:
        for size, count in s.batches.items():
            sizes[size] = sizes.get(size, 0) + count
    assert sizes == {4: 2, 2: 1}  # 10 tensors, max_batch 4
    busy, wall = sum(s.busy_s for s in stats), sum(s.wall_s for s in stats)
    assert 3 * CARD_S * 0.9 <= busy <= wall  # three batches on the card, never more than the wall time


def test_an_idle_infer_process_reports_once_more(tensors: SlotRing, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infer, "STATS_INTERVAL_S", 0.05)
    settings = BackendSettings(name="sim", max_batch=4, batch_timeout_ms=1.0, buffer_sets=2)
    outbox = ListChannel("outbox")
    stage = InferOnSlowCard(InferParams(settings, 0, tensors), None, outbox)
    stage.open()
    for ref in refs(tensors, 4):
        stage.handle(ref)  # a full batch: launched
    stage.on_idle()  # read back (within the interval: no report yet)
    assert not [i for b in outbox.sent for i in b if isinstance(i, InferStats)]
    wait = stage.poll_s()
    assert wait is not None and 0 < wait <= 0.05  # idle, but with work to report
    time.sleep(wait)
    stage.on_idle()
    (stats,) = [i for b in outbox.sent for i in b if isinstance(i, InferStats)]
    assert stats.batches == {4: 1} and CARD_S * 0.9 <= stats.busy_s <= stats.wall_s
    assert stage.poll_s() is None  # nothing left to report: it sleeps on its inbox again
    stage.close()

"""The live batcher (InferParams.stale_after_s > 0): one batch in flight, the newest frames first,
frames too old for the budget dropped where they are batched, every drop a dropped Result with its
reason, every tensor slot released."""

from __future__ import annotations

import time

import numpy as np

from tests.stages.fake_cards import HostCard
from vidpipe.hw.base import TOP_K, BatchOutput
from vidpipe.hw.settings import BackendSettings
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.testing import run_inline
from vidpipe.stages.descriptors import FrameRef, Result, TensorRef
from vidpipe.stages.infer import InferParams, InferStage

BUDGET_S = 0.2


class InstantCard(HostCard):
    """Finishes every batch at once; reports `compute_s` per image as its card time."""

    def __init__(self, max_batch: int, per_image_s: float = 0.001) -> None:
        super().__init__(max_batch)
        self.per_image_s = per_image_s
        self.running: dict[int, int] = {}
        self.started: list[int] = []

    def start(self, k: int, n: int) -> None:
        assert not self.running, "live: one batch in flight"
        self.running[k] = n
        self.started.append(n)

    def wait(self, k: int) -> BatchOutput:
        n = self.running.pop(k)
        return BatchOutput(np.zeros((n, TOP_K), np.uint32), None, 0.0, self.per_image_s * n, 0.0)


def run(tensors: SlotRing, card: InstantCard, ages_s: list[float]) -> list[Result]:
    """Each frame alone (as live sources send them), `ages_s[i]` old when it reaches infer."""
    now = time.time()
    refs = []
    for seq, age in enumerate(ages_s):
        slot = tensors.acquire(1.0)
        assert slot is not None
        refs.append(TensorRef(FrameRef("cam", seq, 0, 1, 1, 0.0, now - age), slot, now))

    class LiveOnCard(InferStage):
        def make_backend(self) -> InstantCard:  # type: ignore[override]
            return card

    settings = BackendSettings(name="sim", max_batch=card.max_batch)
    got = run_inline(LiveOnCard, InferParams(settings, 0, tensors, BUDGET_S), refs)
    assert tensors.free_count() == tensors.slots  # labeled or dropped, every slot came back
    return sorted((r for r in got.items if isinstance(r, Result)), key=lambda r: r.frame.seq)


def outcome(results: list[Result]) -> list[str]:
    return [r.frame.drop_reason if r.frame.dropped else "labeled" for r in results]


def test_frames_too_old_for_the_budget_are_dropped_at_the_batcher_as_late(tensors: SlotRing) -> None:
    results = run(tensors, InstantCard(4), [0.0, 0.3, 0.0, 0.25, 0.01])
    assert outcome(results) == ["labeled", "late", "labeled", "late", "labeled"]
    assert all(r.top5 == () for r in results if r.frame.dropped)


def test_a_busy_card_gets_the_newest_frames_the_older_ones_are_superseded(tensors: SlotRing) -> None:
    card = InstantCard(1)
    results = run(tensors, card, [0.0] * 5)
    # the first goes to the idle card at once; 1..3 arrive while it is busy, each replacing the last
    assert outcome(results) == ["labeled", "superseded", "superseded", "superseded", "labeled"]
    assert card.started == [1, 1]


def test_the_batch_is_capped_to_what_the_card_does_in_half_the_budget(tensors: SlotRing) -> None:
    card = InstantCard(4, per_image_s=0.05)  # 50 ms per image: 2 fit in 100 ms
    results = run(tensors, card, [0.0] * 6)
    assert outcome(results).count("labeled") == 1 + 2  # the first alone, then the newest two
    assert card.started == [1, 2]

"""The Stage base's written rules, each on a stage run in-process (pipeline.testing)."""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from typing import Any

import pytest

from vidpipe.pipeline.events import Event
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.stage import Stage
from vidpipe.pipeline.testing import run_inline


@dataclass(frozen=True)
class Marker:
    name: str


@dataclass(frozen=True)
class Noted(Event):
    what: str


@dataclass(frozen=True)
class Factor:
    k: int = 2
    fail_on: int = -1


class Multiply(Stage[Factor]):
    accepts = (int,)

    def open(self) -> None:
        self.report(Noted("open"))

    def handle(self, item: int) -> None:
        if item == self.params.fail_on:
            raise ValueError(f"cannot take {item}")
        self.emit(item * self.params.k)

    def finish(self) -> None:
        self.emit("finished")

    def close(self) -> None:
        self.report(Noted("close"))


def test_items_are_handled_and_markers_pass_through_in_order() -> None:
    got = run_inline(Multiply, Factor(3), [1, Marker("a"), 2])
    assert got.items == [3, Marker("a"), 6, "finished"]
    assert got.events == [Noted("open"), Noted("close")]


def test_a_batch_in_leaves_as_one_batch_out() -> None:
    got = run_inline(Multiply, Factor(), batches=[[1, 2, 3], [4]])
    assert got.batches == [[2, 4, 6], [8], ["finished"]]  # STOP travels alone: finish() flushes once more


def test_close_runs_when_handle_raises_and_finish_is_skipped() -> None:
    events: list[Any] = []

    class Recording(Multiply):
        def close(self) -> None:
            events.append("closed")

    with pytest.raises(ValueError, match="cannot take 2"):
        run_inline(Recording, Factor(fail_on=2), [1, 2, 3])
    assert events == ["closed"]


@dataclass(frozen=True)
class RingParams:
    ring: SlotRing


class Filler(Stage[RingParams]):
    """Takes a slot per item: when the ring is empty it must pass its held items on first."""

    def handle(self, item: int) -> None:
        slot = self.acquire(self.params.ring)
        self.emit((item, slot))


def test_acquire_flushes_what_is_held_before_it_waits() -> None:
    ctx = multiprocessing.get_context("spawn")
    ring = SlotRing(ctx, 2, 8, "test")
    try:
        held: list[int] = []

        class Releasing(Filler):
            def flush(self) -> None:
                held.append(self.held)
                for _, slot in self._pending:  # the consumer frees the slots it got
                    self.params.ring.release(slot)
                super().flush()

        got = run_inline(Releasing, RingParams(ring), batches=[[1, 2, 3, 4, 5]])
        assert [i for i, _ in got.items] == [1, 2, 3, 4, 5]
        assert [len(b) for b in got.batches] == [2, 2, 1]  # flushed each time the 2-slot ring ran dry
        assert held[:3] == [2, 2, 1]
    finally:
        ring.close()
        ring.unlink()


class Counter(Stage[Factor]):
    """A source: no inbox, produce() until done or stopping."""

    def produce(self) -> None:
        n = 0
        while not self.stopping and n < 5:
            self.emit(n)
            n += 1


def test_a_source_produces_until_stopped() -> None:
    assert run_inline(Counter, Factor()).items == [0, 1, 2, 3, 4]
    assert run_inline(Counter, Factor(), stop_sources=True).items == []


def test_a_stage_without_handle_says_so() -> None:
    with pytest.raises(NotImplementedError, match="Counter must implement handle"):
        run_inline(Counter, Factor(), [1])

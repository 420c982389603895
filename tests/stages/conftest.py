"""Fixtures of the stage tests."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import numpy as np
import pytest

from vidpipe.hw.base import INPUT_SHAPE
from vidpipe.pipeline.shm import SlotRing


@pytest.fixture
def tensors() -> Iterator[SlotRing]:
    """A tensor ring of 16 slots, unlinked after the test."""
    ring = SlotRing(multiprocessing.get_context("spawn"), 16, int(np.prod(INPUT_SHAPE)), "tensors")
    yield ring
    ring.close()
    ring.unlink()

"""The sim backend: the U250 timing model (tolerant timings: this is not a performance test)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from vidpipe.hw.settings import BackendSettings, SimSettings
from vidpipe.hw.sim import PUBLISHED_MS, SimBackend
from vidpipe.pipeline.errors import BackendError

SLACK_S = 0.008  # scheduler and sleep overshoot we accept on a loaded 2-core machine


@pytest.fixture
def sim() -> Iterator[SimBackend]:
    backend = SimBackend(BackendSettings(name="sim", max_batch=32, buffer_sets=2))
    backend.open()
    yield backend
    backend.close()


def _timed_batch(sim: SimBackend, n: int) -> float:
    sim.input_buffer(0)[:n] = 7
    t0 = time.perf_counter()
    sim.start(0, n)
    sim.wait(0)
    return time.perf_counter() - t0


def test_default_model_matches_published_u250_numbers() -> None:
    sim = SimBackend(BackendSettings(name="sim"))
    for batch, published_ms in PUBLISHED_MS.items():
        assert sim.latency_s(batch) * 1000 == pytest.approx(published_ms, rel=0.02)
    assert sim.latency_s(1) == pytest.approx(SimSettings().base_ms / 1000 + SimSettings().per_image_ms / 1000)


@pytest.mark.parametrize("n", [1, 32])
def test_measured_latency_follows_the_model(sim: SimBackend, n: int) -> None:
    modeled = sim.latency_s(n)
    measured = min(_timed_batch(sim, n) for _ in range(5))
    assert modeled <= measured < modeled + SLACK_S


def test_start_returns_immediately_and_results_have_the_contract_shape(sim: SimBackend) -> None:
    t0 = time.perf_counter()
    sim.start(1, 32)
    assert time.perf_counter() - t0 < sim.latency_s(32) / 4
    out = sim.wait(1)
    assert out.top5.shape == (32, 5) and out.top5.dtype == np.uint32
    assert out.scores is None and not sim.labels_meaningful
    assert out.compute_s == pytest.approx(sim.latency_s(32))
    assert out.upload_s == 0.0 and out.download_s == 0.0


def test_back_to_back_batches_serialize_on_one_compute_unit(sim: SimBackend) -> None:
    t0 = time.perf_counter()
    sim.start(0, 32)
    sim.start(1, 32)  # queued behind batch 0
    sim.wait(0)
    first = time.perf_counter() - t0
    sim.wait(1)
    both = time.perf_counter() - t0
    one = sim.latency_s(32)
    assert one <= first < one + SLACK_S
    assert 2 * one <= both < 2 * one + SLACK_S


def test_a_batch_started_after_the_card_idles_does_not_queue(sim: SimBackend) -> None:
    _timed_batch(sim, 1)
    assert _timed_batch(sim, 1) < sim.latency_s(1) + SLACK_S


def test_misuse_is_a_backend_error(sim: SimBackend) -> None:
    with pytest.raises(BackendError, match="not started"):
        sim.wait(0)
    sim.start(0, 1)
    with pytest.raises(BackendError, match="before wait"):
        sim.start(0, 1)
    sim.wait(0)
    with pytest.raises(BackendError, match="max_batch"):
        sim.start(0, 33)
    with pytest.raises(BackendError, match="out of range"):
        sim.start(2, 1)
    closed = SimBackend(BackendSettings(name="sim"))
    with pytest.raises(BackendError, match="before open"):
        closed.input_buffer(0)


def test_close_is_idempotent_and_names_are_imagenet(sim: SimBackend) -> None:
    sim.close()
    sim.close()
    assert len(sim.class_names()) == 1000

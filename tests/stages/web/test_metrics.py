"""Metrics: Prometheus series on a private registry, percentiles and the one-line status."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vidpipe.pipeline.meters import LatencyWindow, RateMeter
from vidpipe.stages.descriptors import InferStats, SourceState
from vidpipe.stages.web.metrics import LATENCY_BUCKETS, SOURCE_STATES, Metrics


def test_latency_window_percentiles_nearest_rank() -> None:
    w = LatencyWindow(size=1000)
    assert w.percentiles() == [None, None, None]
    for ms in range(1, 101):  # 1..100 ms
        w.add(ms / 1000)
    p50, p95, p99 = w.percentiles()
    assert (p50, p95, p99) == pytest.approx((0.050, 0.095, 0.099))
    assert w.percentile(100) == pytest.approx(0.100)


def test_latency_window_keeps_only_the_last_samples() -> None:
    w = LatencyWindow(size=10)
    for i in range(100):
        w.add(float(i))
    assert len(w) == 10
    assert w.percentile(1) == 90.0  # older samples are gone


def test_rate_meter() -> None:
    m = RateMeter(window_s=2.0)
    for i in range(51):
        m.tick(i * 0.04)  # 25 fps for 2 s
    assert m.rate(2.0) == pytest.approx(25.0)
    assert m.rate(10.0) == 0.0  # nothing recent


def test_counters_histogram_and_gauges() -> None:
    m = Metrics()
    for i in range(10):
        m.frame("cam1", latency_s=0.004 + 0.001 * i, now=i * 0.1)
    m.drop("cam1", "stale", 3)
    m.drop("cam1", "overwritten")
    m.reconnect("cam1", 2)
    m.set_queue_depth("frames", 5)
    get = m.registry.get_sample_value
    assert get("vidpipe_frames_total", {"stream": "cam1"}) == 10
    assert get("vidpipe_drops_total", {"stream": "cam1", "reason": "stale"}) == 3
    assert get("vidpipe_drops_total", {"stream": "cam1", "reason": "overwritten"}) == 1
    assert get("vidpipe_reconnects_total", {"stream": "cam1"}) == 2
    assert get("vidpipe_queue_depth", {"queue": "frames"}) == 5
    assert get("vidpipe_latency_seconds_count", {"stream": "cam1"}) == 10
    assert get("vidpipe_latency_seconds_bucket", {"stream": "cam1", "le": "0.005"}) == 2  # 4 and 5 ms
    assert get("vidpipe_fps", {"stream": "cam1"}) == pytest.approx(10.0)
    assert LATENCY_BUCKETS[0] == 0.001 and LATENCY_BUCKETS[-1] == 2.0


def test_source_state_is_one_hot() -> None:
    m = Metrics()
    m.set_state("cam1", "streaming")
    m.set_state("cam1", "backing_off")
    values = {s: m.registry.get_sample_value("vidpipe_source_state", {"stream": "cam1", "state": s})
              for s in SOURCE_STATES}
    assert values.pop("backing_off") == 1.0
    assert set(values.values()) == {0.0}


def test_source_states_match_the_live_source_enum() -> None:
    assert set(SOURCE_STATES) == {s.value for s in SourceState}


def test_private_registries_do_not_collide() -> None:
    a, b = Metrics(), Metrics()
    a.frame("cam1")
    assert b.registry.get_sample_value("vidpipe_frames_total", {"stream": "cam1"}) is None


def test_exposition_parses_as_prometheus_text() -> None:
    m = Metrics()
    m.frame("cam 1 \"quoted\"", latency_s=0.02)
    m.set_state("cam 1 \"quoted\"", "streaming")
    families = {f.name: f for f in text_string_to_metric_families(m.exposition().decode())}
    assert {"vidpipe_frames", "vidpipe_latency_seconds", "vidpipe_source_state", "vidpipe_fps"} <= set(families)
    sample = next(s for s in families["vidpipe_frames"].samples if s.name == "vidpipe_frames_total")
    assert sample.labels == {"stream": "cam 1 \"quoted\""} and sample.value == 1


def test_status_line_and_stream_info() -> None:
    m = Metrics()
    assert m.status_line() == "no streams yet"
    for i in range(50):
        m.frame("cam1", latency_s=0.040, now=i * 0.04)
    m.drop("cam1", "stale", 2)
    m.reconnect("cam1")
    m.set_state("cam1", "streaming")
    m.set_state("cam2", "backing_off")
    m.set_queue_depth("frames", 3)
    line = m.status_line(now=49 * 0.04)
    assert "\n" not in line
    assert line.startswith("cam1 streaming 25.0fps p50 40ms p99 40ms drops 2 reconn 1 | cam2 backing_off 0.0fps")
    assert line.endswith("| queues frames=3")
    info = m.stream_info("cam1", now=49 * 0.04)
    assert info["latency_p50_ms"] == 40.0 and info["frames"] == 50 and info["state"] == "streaming"


def test_thread_safe_updates() -> None:
    m = Metrics()

    def work(k: int) -> None:
        for i in range(500):
            m.frame(f"cam{k % 2}", latency_s=0.001 * (i % 7))
            m.drop(f"cam{k % 2}", "stale")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(m.stream_info(s)["frames"] for s in m.streams()) == 2000
    assert m.registry.get_sample_value("vidpipe_drops_total", {"stream": "cam0", "reason": "stale"}) == 1000


def _families(m: Metrics) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(m.exposition().decode())}


def _samples(m: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for f in _families(m).values() for s in f.samples
            if s.name == name}


def test_every_series_is_exported_from_the_start_at_zero() -> None:
    m = Metrics()
    build = {"version": "0.1.0", "backend": "sim", "python": "3.11.7", "pynq": "3.0.1"}
    m.describe_run(build, stages=("preprocess-0", "infer-0"), infers=("infer-0",))
    m.add_stream("cam1", "source:cam1")
    m.add_event_sink("webhook")
    families = _families(m)  # parsed by prometheus_client's own parser
    info = next(s for s in families["vidpipe_build_info"].samples if s.name == "vidpipe_build_info")
    assert info.labels == build and info.value == 1
    assert _samples(m, "vidpipe_frames_total") == {(("stream", "cam1"),): 0}
    assert _samples(m, "vidpipe_reconnects_total") == {(("stream", "cam1"),): 0}
    assert _samples(m, "vidpipe_clips_total") == {(("stream", "cam1"),): 0}
    assert _samples(m, "vidpipe_drops_total") == {
        (("reason", r), ("stream", "cam1")): 0 for r in ("capture", "stale", "lost", "late", "superseded")}
    assert _samples(m, "vidpipe_restarts_total") == {
        (("stage", s),): 0 for s in ("preprocess-0", "infer-0", "source:cam1")}
    assert _samples(m, "vidpipe_events_total") == {
        (("outcome", o), ("sink", "webhook")): 0 for o in ("sent", "dropped", "failed")}
    assert _samples(m, "vidpipe_latency_seconds_count") == {(("stream", "cam1"),): 0}
    assert _samples(m, "vidpipe_stage_latency_seconds_count") == {
        (("stage", s),): 0 for s in ("preprocess", "queue", "infer", "sink")}
    assert _samples(m, "vidpipe_batch_size_count") == {(("infer", "infer-0"),): 0}
    assert _samples(m, "vidpipe_accelerator_busy_seconds_total") == {(("infer", "infer-0"),): 0}
    assert _samples(m, "vidpipe_accelerator_busy_ratio") == {(("infer", "infer-0"),): 0}
    m.add_stream("cam1", "source:cam1")  # idempotent: a second report changes nothing
    assert _samples(m, "vidpipe_frames_total") == {(("stream", "cam1"),): 0}


def test_stage_latency_histograms_come_from_the_frame_timings() -> None:
    m = Metrics()
    timings_ms = {"preprocess": 3.0, "queue": 12.0, "infer": 30.0, "sink": 0.8, "upload": 1.0}
    for _ in range(4):
        m.frame("cam1", latency_s=0.046, stage_ms=timings_ms)
    get = m.registry.get_sample_value
    for stage, ms in timings_ms.items():
        count = get("vidpipe_stage_latency_seconds_count", {"stage": stage})
        if stage == "upload":  # a backend's breakdown is not a pipeline stage
            assert count is None
            continue
        assert count == 4 and get("vidpipe_stage_latency_seconds_sum", {"stage": stage}) == pytest.approx(4 * ms / 1000)
    assert get("vidpipe_stage_latency_seconds_bucket", {"stage": "queue", "le": "0.01"}) == 0
    assert get("vidpipe_stage_latency_seconds_bucket", {"stage": "queue", "le": "0.02"}) == 4


def test_batch_sizes_and_busy_ratio_from_infer_stats() -> None:
    m = Metrics()
    m.describe_run({}, infers=("infer-0",))
    m.infer_stats(InferStats("infer-0", {8: 20, 3: 2}, busy_s=0.4, wall_s=1.0))
    m.infer_stats(InferStats("infer-0", {1: 1}, busy_s=0.05, wall_s=0.5))
    get = m.registry.get_sample_value
    assert get("vidpipe_batch_size_count", {"infer": "infer-0"}) == 23
    assert get("vidpipe_batch_size_sum", {"infer": "infer-0"}) == 8 * 20 + 3 * 2 + 1
    assert get("vidpipe_batch_size_bucket", {"infer": "infer-0", "le": "4.0"}) == 3
    assert get("vidpipe_accelerator_busy_seconds_total", {"infer": "infer-0"}) == pytest.approx(0.45)
    assert get("vidpipe_accelerator_busy_ratio", {"infer": "infer-0"}) == pytest.approx(0.1)  # the last report
    assert m.counts()["accelerators"] == {"infer-0": {"busy_ratio": 0.1}}


def test_a_removed_stream_takes_all_its_series_along() -> None:
    m = Metrics()
    m.add_stream("cam1", "source:cam1")
    m.add_stream("cam2", "source:cam2")
    m.set_state("cam1", "streaming")
    m.frame("cam1", latency_s=0.01)
    m.remove("cam1")
    text = m.exposition().decode()
    assert "cam1" not in text and 'stream="cam2"' in text and 'stage="source:cam2"' in text

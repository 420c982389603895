"""Live metrics: Prometheus series on a private registry, plus plain-Python numbers for the log.

    m = Metrics()
    m.describe_run({"version": "0.1.0", "backend": "cpu", ...}, stages=["infer-0", ...], infers=["infer-0"])
    m.add_stream("cam1")                       # every series of cam1 exported at 0 from now on
    m.frame("cam1", latency_s=0.041, stage_ms={"preprocess": 3.1, "queue": 10, "infer": 20, "sink": 1.2})
    m.drop("cam1", "stale"); m.reconnect("cam1"); m.set_state("cam1", "streaming")
    m.set_queue_depth("frames", 3)
    m.restart("infer-0"); m.event("webhook", "sent"); m.clip("cam1")
    m.infer_stats(InferStats("infer-0", {8: 20, 3: 1}, busy_s=0.4, wall_s=1.0))   # batch sizes, busy ratio
    m.remove("cam1")                           # a stream removed at run time: its series go too
    log.info("%s", m.status_line())            # cam1 streaming 24.8fps p50 41ms p99 80ms ...
    LiveView(registry=m.registry)              # serves generate_latest(m.registry) at /metrics

Every counter is exported from the start at 0: the labelled series of a stream (drops by each
known reason included) from add_stream(), those of stages, infer processes and event receivers from
describe_run() / add_event_sink(). Per-stage latencies (`vidpipe_stage_latency_seconds{stage}`) are
the Result's timings: preprocess = capture -> preprocessed, queue = preprocessed -> batch started,
infer = batch started -> read back, sink = read back -> labelled in the sink.

The registry is private (not prometheus_client.REGISTRY) so several pipelines or tests in one
process never collide. Every method is thread-safe.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from vidpipe.pipeline.meters import LatencyWindow, RateMeter
from vidpipe.stages.descriptors import InferStats, SourceState

# 1 ms (accelerator alone) .. 2 s (a badly overloaded pipeline); finer where live latency lives.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)

SOURCE_STATES = tuple(state.value for state in SourceState)
# replaced in the source, too old for preprocess, lost in a crash, too old for the card's time at the
# batcher, replaced by a newer frame while the card was busy (stages.infer)
DROP_REASONS = ("capture", "stale", "lost", "late", "superseded")
PIPELINE_STAGES = ("preprocess", "queue", "infer", "sink")  # the parts of the capture -> label latency
EVENT_OUTCOMES = ("sent", "dropped", "failed")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass
class _StreamTally:
    frames: int = 0
    drops: int = 0
    reconnects: int = 0
    state: str = ""
    fps_override: float | None = None
    reasons: set[str] = field(default_factory=set)  # drop reasons seen (to remove their series)
    by_reason: dict[str, int] = field(default_factory=dict)  # drops per reason
    source_stage: str = ""  # its source process's name in vidpipe_restarts_total{stage}
    meter: RateMeter = field(default_factory=RateMeter)
    latency: LatencyWindow = field(default_factory=LatencyWindow)


class Metrics:
    """Counters, histograms and gauges of a live run; see the module docstring."""

    def __init__(self, namespace: str = "vidpipe", latency_window: int = 1000, fps_window_s: float = 2.0) -> None:
        self.registry = CollectorRegistry()
        r, ns = self.registry, namespace
        self.frames_total = Counter("frames", "Frames that reached the sink", ["stream"], namespace=ns, registry=r)
        self.drops_total = Counter("drops", "Frames dropped, by reason", ["stream", "reason"], namespace=ns, registry=r)
        self.reconnects_total = Counter("reconnects", "Source reconnect attempts", ["stream"], namespace=ns, registry=r)
        self.latency_seconds = Histogram("latency_seconds", "Capture to sink latency", ["stream"], namespace=ns,
                                         registry=r, buckets=LATENCY_BUCKETS)
        self.fps = Gauge("fps", "Frames per second at the sink", ["stream"], namespace=ns, registry=r)
        self.queue_depth = Gauge("queue_depth", "Items waiting in a queue", ["queue"], namespace=ns, registry=r)
        self.source_state = Gauge("source_state", "1 for the current state of a source", ["stream", "state"],
                                  namespace=ns, registry=r)
        self.restarts_total = Counter("restarts", "Crashed stage processes restarted", ["stage"], namespace=ns,
                                      registry=r)
        self.events_total = Counter("events", "Label events by receiver and outcome (sent, dropped, failed)",
                                    ["sink", "outcome"], namespace=ns, registry=r)
        self.clips_total = Counter("clips", "Event clips written", ["stream"], namespace=ns, registry=r)
        self.stage_latency_seconds = Histogram(
            "stage_latency_seconds", "Time a frame spent in each part of the pipeline: preprocess (capture to "
            "preprocessed), queue (to its batch's start), infer (batch start to read back), sink (to labelled)",
            ["stage"], namespace=ns, registry=r, buckets=LATENCY_BUCKETS)
        self.batch_size = Histogram("batch_size", "Images per batch sent to the accelerator", ["infer"],
                                    namespace=ns, registry=r, buckets=BATCH_BUCKETS)
        self.busy_seconds_total = Counter("accelerator_busy_seconds", "Wall time with a batch in flight",
                                          ["infer"], namespace=ns, registry=r)
        self.busy_ratio = Gauge("accelerator_busy_ratio", "Fraction of wall time with a batch in flight "
                                "(start to read back), over the infer process's last report (about 1 s)",
                                ["infer"], namespace=ns, registry=r)
        self.build_info = Info("build", "vidpipe version, backend, python and pynq versions", namespace=ns,
                               registry=r)
        for stage in PIPELINE_STAGES:
            self.stage_latency_seconds.labels(stage)
        self._busy: dict[str, float] = {}
        self._restarts: dict[str, int] = {}
        self._events: dict[str, dict[str, int]] = {}
        self._latency_window = latency_window
        self._fps_window_s = fps_window_s
        self._streams: dict[str, _StreamTally] = {}
        self._queues: dict[str, int] = {}
        self._lock = threading.Lock()

    def _tally(self, stream: str) -> _StreamTally:
        tally = self._streams.get(stream)
        if tally is None:
            tally = _StreamTally(meter=RateMeter(self._fps_window_s), latency=LatencyWindow(self._latency_window))
            self._streams[stream] = tally
        return tally

    def describe_run(self, build: Mapping[str, str], stages: Iterable[str] = (), infers: Iterable[str] = ()) -> None:
        """vidpipe_build_info, and the series of the stage processes (restarts) and infer processes
        (batch sizes, busy time) exported at 0."""
        self.build_info.info(dict(build))
        for stage in stages:
            self.restarts_total.labels(stage)
        for infer in infers:
            self.batch_size.labels(infer)
            self.busy_seconds_total.labels(infer)
            self.busy_ratio.labels(infer)

    def add_stream(self, stream: str, source_stage: str = "") -> None:
        """Every series of `stream` (and restarts of `source_stage`) exported from now on, at 0
        until something happens. Idempotent."""
        with self._lock:
            tally = self._tally(stream)
            tally.reasons.update(DROP_REASONS)
            tally.source_stage = source_stage or tally.source_stage
        if source_stage:
            self.restarts_total.labels(source_stage)
        for metric in (self.frames_total, self.reconnects_total, self.clips_total, self.latency_seconds, self.fps):
            metric.labels(stream)
        for reason in DROP_REASONS:
            self.drops_total.labels(stream, reason)

    def add_event_sink(self, sink: str) -> None:
        for outcome in EVENT_OUTCOMES:
            self.events_total.labels(sink, outcome)

    def infer_stats(self, stats: InferStats) -> None:
        """An infer process's report: its batch sizes and the time it had a batch in flight."""
        for size, count in stats.batches.items():
            for _ in range(count):
                self.batch_size.labels(stats.infer).observe(size)
        self.busy_seconds_total.labels(stats.infer).inc(stats.busy_s)
        ratio = min(1.0, stats.busy_s / stats.wall_s) if stats.wall_s > 0 else 0.0
        self.busy_ratio.labels(stats.infer).set(ratio)
        with self._lock:
            self._busy[stats.infer] = ratio

    def frame(self, stream: str, latency_s: float | None = None, now: float | None = None,
              stage_ms: Mapping[str, float] | None = None) -> None:
        """One frame of `stream` done; `latency_s` = now - its capture time; `stage_ms`: milliseconds
        spent in each of PIPELINE_STAGES (FrameLabel.timings_ms; other keys are ignored)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tally = self._tally(stream)
            tally.frames += 1
            tally.meter.tick(now)
            fps = tally.meter.rate(now) if tally.fps_override is None else tally.fps_override
            if latency_s is not None:
                tally.latency.add(latency_s)
        self.frames_total.labels(stream).inc()
        self.fps.labels(stream).set(fps)
        if latency_s is not None:
            self.latency_seconds.labels(stream).observe(latency_s)
        if stage_ms:
            for stage in PIPELINE_STAGES:
                if (ms := stage_ms.get(stage)) is not None:
                    self.stage_latency_seconds.labels(stage).observe(max(0.0, ms / 1000.0))

    def drop(self, stream: str, reason: str, count: int = 1) -> None:
        if count <= 0:
            return
        with self._lock:
            tally = self._tally(stream)
            tally.drops += count
            tally.reasons.add(reason)
            tally.by_reason[reason] = tally.by_reason.get(reason, 0) + count
        self.drops_total.labels(stream, reason).inc(count)

    def drops_by_reason(self, stream: str) -> dict[str, int]:
        """Frames of `stream` dropped so far, per reason (every known reason, 0 included)."""
        with self._lock:
            counts = dict(self._tally(stream).by_reason)
        return {reason: counts.pop(reason, 0) for reason in DROP_REASONS} | counts

    def reconnect(self, stream: str, count: int = 1) -> None:
        if count <= 0:
            return
        with self._lock:
            self._tally(stream).reconnects += count
        self.reconnects_total.labels(stream).inc(count)

    def set_fps(self, stream: str, fps: float) -> None:
        """Report a measured fps instead of the one counted from frame() calls."""
        with self._lock:
            self._tally(stream).fps_override = fps
        self.fps.labels(stream).set(fps)

    def restart(self, stage: str) -> None:
        with self._lock:
            self._restarts[stage] = self._restarts.get(stage, 0) + 1
        self.restarts_total.labels(stage).inc()

    def event(self, sink: str, outcome: str, count: int = 1) -> None:
        """A label event `sent`, `dropped` (queue full) or `failed` (given up) by receiver `sink`."""
        with self._lock:
            counts = self._events.setdefault(sink, {})
            counts[outcome] = counts.get(outcome, 0) + count
        self.events_total.labels(sink, outcome).inc(count)

    def clip(self, stream: str) -> None:
        self.clips_total.labels(stream).inc()

    def counts(self) -> dict[str, Any]:
        """For /status.json: restarts by stage, events by receiver and outcome, accelerator busy ratios."""
        with self._lock:
            return {"restarts": dict(self._restarts), "events": {k: dict(v) for k, v in self._events.items()},
                    "accelerators": {k: {"busy_ratio": round(v, 3)} for k, v in self._busy.items()}}

    def remove(self, stream: str) -> None:
        """Forget a stream removed at run time, its Prometheus series included."""
        with self._lock:
            tally = self._streams.pop(stream, None)
        if tally is None:
            return
        series = [(self.frames_total, (stream,)), (self.reconnects_total, (stream,)),
                  (self.latency_seconds, (stream,)), (self.fps, (stream,)), (self.clips_total, (stream,)),
                  *((self.drops_total, (stream, r)) for r in tally.reasons),
                  *([(self.restarts_total, (tally.source_stage,))] if tally.source_stage else []),
                  *((self.source_state, (stream, st)) for st in {*SOURCE_STATES, tally.state})]
        for metric, labels in series:
            with contextlib.suppress(KeyError):  # never observed
                metric.remove(*labels)

    def set_queue_depth(self, queue: str, depth: int) -> None:
        with self._lock:
            self._queues[queue] = depth
        self.queue_depth.labels(queue).set(depth)

    def set_state(self, stream: str, state: str) -> None:
        """source_state{stream,state} = 1 for `state`, 0 for every other state."""
        with self._lock:
            self._tally(stream).state = state
        for s in {*SOURCE_STATES, state}:
            self.source_state.labels(stream, s).set(1.0 if s == state else 0.0)

    def stream_info(self, stream: str, now: float | None = None) -> dict[str, Any]:
        """Numbers for a status page: fps, latency_p50_ms/p95/p99, state, frames, drops, reconnects."""
        now = time.monotonic() if now is None else now
        with self._lock:
            t = self._tally(stream)
            fps = t.meter.rate(now) if t.fps_override is None else t.fps_override
            info: dict[str, Any] = {"fps": round(fps, 2), "state": t.state, "frames": t.frames,
                                    "drops": t.drops, "reconnects": t.reconnects}
        for name, value in zip(("p50", "p95", "p99"), t.latency.percentiles(), strict=True):
            info[f"latency_{name}_ms"] = None if value is None else round(value * 1000, 1)
        return info

    def streams(self) -> list[str]:
        with self._lock:
            return sorted(self._streams)

    def status_line(self, now: float | None = None) -> str:
        """One line for the periodic log status, e.g.
        `cam1 streaming 24.9fps p50 41ms p99 80ms drops 3 reconn 1 | cam2 ... | queues frames=2`."""
        parts = []
        for stream in self.streams():
            i = self.stream_info(stream, now)
            lat = " ".join(f"{p} {i[f'latency_{p}_ms']:.0f}ms" for p in ("p50", "p99")
                           if i[f"latency_{p}_ms"] is not None)
            parts.append(" ".join(x for x in (stream, i["state"], f"{i['fps']:.1f}fps", lat,
                                              f"drops {i['drops']}", f"reconn {i['reconnects']}") if x))
        with self._lock:
            queues = " ".join(f"{q}={d}" for q, d in sorted(self._queues.items()))
        if queues:
            parts.append(f"queues {queues}")
        return " | ".join(parts) if parts else "no streams yet"

    def exposition(self) -> bytes:
        """The Prometheus text format of every series (what /metrics serves)."""
        return generate_latest(self.registry)

"""Live metrics: Prometheus series on a private registry, plus plain-Python numbers for the log.

    m = Metrics()
    m.frame("cam1", latency_s=0.041)           # one frame shown/labelled, capture -> sink latency
    m.drop("cam1", "stale"); m.reconnect("cam1"); m.set_state("cam1", "streaming")
    m.set_queue_depth("frames", 3)
    m.restart("infer-0"); m.event("webhook", "sent"); m.clip("cam1")
    m.remove("cam1")                           # a stream removed at run time: its series go too
    log.info("%s", m.status_line())            # cam1 streaming 24.8fps p50 41ms p99 80ms ...
    LiveView(registry=m.registry)              # serves generate_latest(m.registry) at /metrics

The registry is private (not prometheus_client.REGISTRY) so several pipelines or tests in one
process never collide. Every method is thread-safe.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from pipeline.meters import LatencyWindow, RateMeter
from stages.descriptors import SourceState

# 1 ms (accelerator alone) .. 2 s (a badly overloaded pipeline); finer where live latency lives.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)

SOURCE_STATES = tuple(state.value for state in SourceState)


@dataclass
class _StreamTally:
    frames: int = 0
    drops: int = 0
    reconnects: int = 0
    state: str = ""
    fps_override: float | None = None
    reasons: set[str] = field(default_factory=set)  # drop reasons seen (to remove their series)
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

    def frame(self, stream: str, latency_s: float | None = None, now: float | None = None) -> None:
        """One frame of `stream` done; `latency_s` = now - its capture time."""
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

    def drop(self, stream: str, reason: str, count: int = 1) -> None:
        if count <= 0:
            return
        with self._lock:
            tally = self._tally(stream)
            tally.drops += count
            tally.reasons.add(reason)
        self.drops_total.labels(stream, reason).inc(count)

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
        """For /status.json: restarts by stage, events by receiver and outcome."""
        with self._lock:
            return {"restarts": dict(self._restarts), "events": {k: dict(v) for k, v in self._events.items()}}

    def remove(self, stream: str) -> None:
        """Forget a stream removed at run time, its Prometheus series included."""
        with self._lock:
            tally = self._streams.pop(stream, None)
        if tally is None:
            return
        series = [(self.frames_total, (stream,)), (self.reconnects_total, (stream,)),
                  (self.latency_seconds, (stream,)), (self.fps, (stream,)), (self.clips_total, (stream,)),
                  *((self.drops_total, (stream, r)) for r in tally.reasons),
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

"""/metrics of a live front on Ray (stages.jobs.live_ray): every stream with the node it runs on, and
every node's load. The series are made at each scrape from the front's snapshot (a custom
collector), so nothing is kept in step with the nodes.

    vidpipe_frames_total{stream,node}              frames labeled there (a moved stream starts a new series)
    vidpipe_drops_total{stream,node}               frames dropped there, every reason
    vidpipe_fps{stream,node}                       frames/s labeled
    vidpipe_latency_p50_seconds{stream,node}       capture -> label, over the node's last 1000 frames
    vidpipe_latency_p99_seconds{stream,node}
    vidpipe_source_state{stream,node,state}        1 for its state (`moving`, `waiting` between nodes)
    vidpipe_stream_moves_total{stream}             times the node it ran on was lost
    vidpipe_node_up{node,host}                     1 while it answers, 0 once lost
    vidpipe_node_streams{node}                     streams placed there
    vidpipe_node_decode_fps{node}                  frames/s its streams label, summed
    vidpipe_node_accelerator_busy_ratio{node}      its card's busiest infer process (a batch in flight)
    vidpipe_node_card_capacity_fps{node}           its card's measured rate, the placement budget
    vidpipe_events_total{sink,outcome}, vidpipe_build_info     as on one host (the front sends the events)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from vidpipe.stages.web.metrics import Metrics


@dataclass(frozen=True)
class StreamRow:
    name: str
    node: str  # "" between nodes
    info: dict[str, Any] = field(default_factory=dict)  # the node's figures: frames, drops, fps, state...
    moves: int = 0


@dataclass(frozen=True)
class NodeRow:
    node: str
    host: str
    up: bool
    streams: int = 0
    decode_fps: float = 0.0
    busy: float = 0.0
    card_fps: float = 0.0


Snapshot = tuple[list[StreamRow], list[NodeRow]]


class ClusterMetrics:
    """The collector; `snapshot` is the front's (thread-safe), `local` counts the events it sends."""

    def __init__(self, snapshot: Callable[[], Snapshot], local: Metrics) -> None:
        self.snapshot = snapshot
        self.local = local
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def describe(self) -> list[Metric]:
        return []  # the names are the front's own: no need to collect at registration

    def collect(self) -> Iterator[Metric]:
        streams, nodes = self.snapshot()
        yield from self._streams(streams)
        yield from self._nodes(nodes)
        yield from self.local.events_total.collect()
        yield from self.local.build_info.collect()

    @staticmethod
    def _streams(rows: list[StreamRow]) -> Iterator[Metric]:
        labels = ["stream", "node"]
        frames = CounterMetricFamily("vidpipe_frames", "Frames labeled, by the node that labeled them", labels=labels)
        drops = CounterMetricFamily("vidpipe_drops", "Frames dropped, every reason", labels=labels)
        fps = GaugeMetricFamily("vidpipe_fps", "Frames per second labeled", labels=labels)
        p50 = GaugeMetricFamily("vidpipe_latency_p50_seconds", "Capture to label latency, median", labels=labels)
        p99 = GaugeMetricFamily("vidpipe_latency_p99_seconds", "Capture to label latency, 99th percentile",
                                labels=labels)
        state = GaugeMetricFamily("vidpipe_source_state", "1 for the current state of a stream",
                                  labels=["stream", "node", "state"])
        moves = CounterMetricFamily("vidpipe_stream_moves", "Times the node a stream ran on was lost",
                                    labels=["stream"])
        for row in rows:
            key, info = [row.name, row.node], row.info
            frames.add_metric(key, info.get("frames", 0))
            drops.add_metric(key, info.get("drops", 0))
            fps.add_metric(key, info.get("fps", 0.0))
            for family, name in ((p50, "latency_p50_ms"), (p99, "latency_p99_ms")):
                if info.get(name) is not None:
                    family.add_metric(key, info[name] / 1000.0)
            state.add_metric([*key, str(info.get("state") or "starting")], 1.0)
            moves.add_metric([row.name], row.moves)
        yield from (frames, drops, fps, p50, p99, state, moves)

    @staticmethod
    def _nodes(rows: list[NodeRow]) -> Iterator[Metric]:
        up = GaugeMetricFamily("vidpipe_node_up", "1 while the node answers, 0 once it was lost",
                               labels=["node", "host"])
        streams = GaugeMetricFamily("vidpipe_node_streams", "Streams placed on the node", labels=["node"])
        decode = GaugeMetricFamily("vidpipe_node_decode_fps", "Frames per second the node's streams label",
                                   labels=["node"])
        busy = GaugeMetricFamily("vidpipe_node_accelerator_busy_ratio",
                                 "Fraction of wall time the node's card has a batch in flight", labels=["node"])
        card = GaugeMetricFamily("vidpipe_node_card_capacity_fps", "The node's card rate, measured at its start",
                                 labels=["node"])
        for row in rows:
            up.add_metric([row.node, row.host], 1.0 if row.up else 0.0)
            if row.up:
                streams.add_metric([row.node], row.streams)
                decode.add_metric([row.node], row.decode_fps)
                busy.add_metric([row.node], row.busy)
                card.add_metric([row.node], row.card_fps)
        yield from (up, streams, decode, busy, card)

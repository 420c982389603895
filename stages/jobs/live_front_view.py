"""What a live front on Ray (stages.jobs.live_ray) serves: the live page, console, REST API,
/status.json and /metrics (stages.web: LiveView, sign-in, Console, StreamsApi, ClusterMetrics)
for every stream of every node, and the label events, sent from here only (stages.outputs.events:
events.START.jsonl, webhook, MQTT, plug-ins; each event keeps the run id of the node that made it).

Each stream shows the node it runs on (`node`, `host`), how often it moved (`moves`) and how long
its last move took (`failover_s`: its old node's last answer -> its first label on the new one);
/status.json has each node's load under `nodes`, and a periodic status line goes to the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidpipe.pipeline.redact import mask_url
from vidpipe.stages.config import LiveSettings
from vidpipe.stages.jobs.live_nodes import FrontStream, NodeLink
from vidpipe.stages.live_files import segments
from vidpipe.stages.outputs.events import EventOutputs
from vidpipe.stages.outputs.live_records import build_info, new_run_id
from vidpipe.stages.web.access import settle_access
from vidpipe.stages.web.api import StreamsApi
from vidpipe.stages.web.cluster_metrics import ClusterMetrics, NodeRow, Snapshot, StreamRow
from vidpipe.stages.web.console import Console
from vidpipe.stages.web.liveview import STALE_AFTER_S, LiveView
from vidpipe.stages.web.metrics import Metrics

if TYPE_CHECKING:
    from vidpipe.stages.jobs.live_ray import LiveFront

log = logging.getLogger(__name__)


class FrontView:
    """See the module docstring. show/remove/emit from the front's loop; the rest from the server's threads."""

    def __init__(self, front: LiveFront) -> None:
        self.front = front
        self.run_id = new_run_id()
        self.metrics = Metrics()  # the events' counts and the build info
        self.metrics.describe_run(build_info(front.config.backend.name))
        self.cluster = ClusterMetrics(self.snapshot, self.metrics)
        self.events: EventOutputs | None = None
        self.server: LiveView | None = None
        self.sent: set[tuple[Any, ...]] = set()  # events a predecessor sent (streams picked up only)
        self._t_status = time.monotonic()

    def open(self, live: LiveSettings) -> None:
        out = Path(self.front.config.output.dir)
        self.events = EventOutputs(live.events, out, self.metrics, segment_s=live.record_segment_s)
        if not live.http:
            return
        access = settle_access(live, out)
        preview = self.front.config.cluster.preview_fps
        stale = max(STALE_AFTER_S, 2.5 / preview) if preview else STALE_AFTER_S
        self.server = LiveView(live.http_host, live.http_port, registry=self.cluster.registry,
                               api=StreamsApi(self.front.api.request) if live.api else None,
                               status_extra=self._status_extra, stale_after_s=stale, guard=access.guard,
                               tls=access.tls, console=Console(out, live.record_keep_s, live.max_disk_gb),
                               title="vidpipe live on Ray").start()
        log.info("live view on %s (run %s)", self.server.url, self.run_id)

    def emit(self, event: dict[str, Any]) -> None:
        """A label event from a node, once: to the senders and the Python API's callback."""
        if event_key(event) in self.sent:
            return
        if self.front.on_event is not None:
            self.front.on_event(event)
        if self.events is not None:
            self.events.emit(event)

    def pick_up_sent(self) -> None:
        """A front started again: the events its predecessor wrote are not sent twice."""
        self.sent |= sent_events(Path(self.front.config.output.dir))

    def show(self, s: FrontStream, jpeg: bytes | None) -> None:
        if self.server is not None:
            self.server.publish(s.name, jpeg, self.figures(s))

    def remove(self, name: str) -> None:
        if self.server is not None:
            self.server.remove(name)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.events is not None:
            self.events.close()

    def figures(self, s: FrontStream) -> dict[str, Any]:
        link = self.front.links.get(s.node)
        state = s.info.get("state") or ("connecting" if s.node else "waiting")
        return {**s.info, "state": state, "node": s.node[:8], "host": _host(link), "moves": s.moves,
                "failover_s": s.failover_s}

    def describe(self, s: FrontStream) -> dict[str, Any]:
        """As GET /api/streams lists a stream."""
        return {**self.figures(s), "name": s.name, "uri": mask_url(s.source.uri), "origin": s.origin,
                "removing": s.removing, "realtime": s.source.realtime, "loop": s.source.loop}

    def snapshot(self) -> Snapshot:
        with self.front.lock:
            streams = [StreamRow(s.name, s.node[:8], dict(s.info), s.moves) for s in self.front.streams.values()]
            nodes = [self._node_row(link, True) for link in self.front.links.values()]
            nodes += [self._node_row(link, False) for node, link in self.front.lost.items()
                      if node not in self.front.links]
        return streams, nodes

    def _node_row(self, link: NodeLink, up: bool) -> NodeRow:
        mine = [s for s in self.front.streams.values() if s.node == link.node] if up else []
        busy = max(link.report.busy.values(), default=0.0) if link.report is not None else 0.0
        return NodeRow(link.short, _host(link), up, len(mine), round(sum(s.info.get("fps", 0.0) for s in mine), 2),
                       busy, link.info.card_fps if link.info is not None else 0.0)

    def _status_extra(self) -> dict[str, Any]:
        with self.front.lock:
            _, nodes = self.snapshot()
            info = {link.short: link.info for link in [*self.front.lost.values(), *self.front.links.values()]}
        return {"run": self.run_id, "events": self.metrics.counts()["events"],
                "accelerators": {f"node {n.node}": {"busy_ratio": n.busy} for n in nodes if n.up},
                "nodes": {n.node: {"host": n.host, "up": n.up, "streams": n.streams, "decode_fps": n.decode_fps,
                                   "busy_ratio": n.busy, "card_fps": round(n.card_fps, 1),
                                   "pixel_rate_mpx": round(i.pixel_rate / 1e6, 1) if (i := info.get(n.node)) else None,
                                   "run": i.run if i else None, "node_id": i.node if i else None}
                          for n in nodes}}

    def log_status(self) -> None:
        """The periodic one-line status (live.status_interval_s), from the front's loop."""
        interval = self.front.live.status_interval_s
        if interval <= 0 or time.monotonic() - self._t_status < interval:
            return
        self._t_status = time.monotonic()
        streams, nodes = self.snapshot()
        parts = [f"{r.name}@{r.node or '-'} {r.info.get('state') or '?'} {r.info.get('fps', 0):.1f}fps"
                 for r in streams]
        parts += [f"node {n.node} {n.streams} streams busy {n.busy:.0%}" for n in nodes if n.up]
        log.info("status: %s", " | ".join(parts) or "no streams yet")


def _host(link: NodeLink | None) -> str:
    return link.info.host if link is not None and link.info is not None else ""


def event_key(event: dict[str, Any]) -> tuple[Any, ...]:
    """What makes an event one: its run, stream, frame and type."""
    return event.get("run"), event.get("stream"), event.get("frame"), event.get("type"), event.get("time")


def sent_events(out: Path, newest: int = 2) -> set[tuple[Any, ...]]:
    """The keys of the events in the newest events segments: those a front that stopped had sent."""
    keys = set()
    for path in segments(out, "events")[-newest:]:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                with contextlib.suppress(ValueError):
                    keys.add(event_key(json.loads(line)))
    return keys

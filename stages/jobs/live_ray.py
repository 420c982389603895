"""`vidpipe live SOURCES --ray ADDRESS`: live streams on the nodes of a Ray cluster, one front.

    user --page, console, /api/streams, /status.json, /metrics--> front (this process: LiveView,
                                                                  sign-in, events to the senders)
    front --add / remove / poll(ack)--> LiveNode actor, one per node (stages.jobs.live_actor): the
          <--figures, pictures, events--  node's own live graph, writing its streams' files into OUT

The front places each stream on the node with the most room (stages.jobs.placement: the node's
measured card rate and CPU pixel rate, cluster.max_streams_per_node), at start, when one is added
over the API (none has room: 400, one line) and when a node is lost. It polls every node's actor
(a long poll: at once when there are events, else every POLL_WAIT_S); a node whose actor has died
or that has not answered for failover_s / 3 is lost: its actor is killed (a sink whose actor is
gone writes nothing more: stages.outputs.live_node), and its streams are placed on the nodes left
and go on in new segments, under the new node's run id (a gap, never a duplicate (run, stream,
frame)). Label events come from the nodes once each (acknowledged by the next poll) and go out
through the usual senders (events.START.jsonl, webhook, MQTT, plug-ins) from here only. A node that
joins, or comes back, gets an actor and takes new streams; running streams are never moved to it.

The actors outlive the front (Ray detached actors named after OUT and their node): a front started
again with the same OUT picks up the streams they run (its log says which) and the events its
predecessor had not acknowledged, less those already in OUT/events.*.jsonl. Ctrl-C (or SIGTERM)
stops every node's graph (outputs finalized) and its actor.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from vidpipe.pipeline.errors import VidpipeError, one_line
from vidpipe.pipeline.redact import mask_url
from vidpipe.stages.config import JobConfig, SourceSettings
from vidpipe.stages.jobs.base import EXIT_FAILED, EXIT_OK
from vidpipe.stages.jobs.live import settle_api_token
from vidpipe.stages.jobs.live_front_api import FrontApi
from vidpipe.stages.jobs.live_front_view import FrontView
from vidpipe.stages.jobs.live_nodes import (
    FrontStream,
    NodeLink,
    check_cluster,
    demand_of,
    eligible_nodes,
    front_sources,
    ray_error,
    start_actor,
)
from vidpipe.stages.jobs.placement import Load, NodeRoom, load_of, refusal, spread
from vidpipe.stages.jobs.ray_driver import _connect, _import_ray
from vidpipe.stages.outputs.notify import parse_mqtt_url
from vidpipe.stages.outputs.writers import ensure_output_dir
from vidpipe.stages.web.liveview import check_port_free

log = logging.getLogger(__name__)

STEP_S = 0.5  # the loop's longest wait: a stop, a refresh and a silent node are seen this often
POLL_WAIT_S = 0.5  # a node answers a poll at once when it has events, else after this long
REFRESH_S = 1.0  # nodes that joined or left (ray.nodes()), streams waiting for room
START_TIMEOUT_S = 180.0  # a node's graph to start (a dozen spawned processes on a busy host)
CALL_TIMEOUT_S = 60.0  # an add or remove on a node
RETRY_NODE_S = 60.0  # a node whose graph could not start is tried again after this (one lost: failover_s)


def run_live_on_ray(config: JobConfig) -> int:
    return LiveFront(config).run()


class LiveFront:
    """See the module docstring. The loop runs on the caller's thread; the API on the server's."""

    def __init__(self, config: JobConfig, on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.config = config  # settled (stages.jobs.api.settle_config)
        self.on_event = on_event  # each label event once, as events.jsonl has it (the Python API's handle)
        self.live = config.live
        self.ray = _import_ray()
        self.lost_after = config.cluster.failover_s / 3
        self.links: dict[str, NodeLink] = {}  # node id -> its actor, once its graph runs
        self.lost: dict[str, NodeLink] = {}
        self.streams: dict[str, FrontStream] = {}
        self.failed: dict[str, str] = {}  # stream -> one line
        self.polls: dict[Any, str] = {}  # poll in flight -> node
        self.adds: dict[Any, tuple[str, str]] = {}  # add in flight -> (stream, node)
        self.starting: dict[Any, NodeLink] = {}  # a new node's ready() in flight -> its link
        self.retry_at: dict[str, float] = {}
        self.lock = threading.RLock()  # the tables above: the loop and the server's threads
        self.stop = threading.Event()
        self.view = FrontView(self)
        self.api = FrontApi(self)
        self._refresh_at = 0.0

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> int:
        sources = self._prepare()
        try:
            self._start(sources)  # a Ctrl-C meanwhile is a KeyboardInterrupt (exit 130), after the teardown
            previous = _signals_to(self.stop.set)
            try:
                while not self.stop.is_set() and self._more():
                    self._step()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        finally:
            self._shutdown()
        return EXIT_FAILED if self.failed else EXIT_OK

    def _prepare(self) -> list[tuple[str, SourceSettings]]:
        live = self.live
        sources, problems = front_sources(live)
        self.failed.update(problems)
        if live.events.mqtt:
            parse_mqtt_url(live.events.mqtt)
        if live.http:
            check_port_free(live.http_host, live.http_port)
            if live.api:
                self.live = replace(live, api_token=settle_api_token(live))
        ensure_output_dir(self.config.output.dir)
        _connect(self.ray, self.config.cluster.ray_address)
        check_cluster(self.ray, self.config)
        return sources

    def _start(self, sources: list[tuple[str, SourceSettings]]) -> None:
        """Every eligible node's actor (its graph started, or picked up), then the sources placed."""
        ray = self.ray
        for node in eligible_nodes(ray, self.config):
            link = NodeLink(node, start_actor(ray, self.config, node))
            self.starting[link.actor.ready.remote(START_TIMEOUT_S)] = link  # (killed by _shutdown if need be)
        for ref, link in list(self.starting.items()):
            try:
                link.info = ray.get(ref, timeout=START_TIMEOUT_S + 30)
            except Exception as exc:
                self._not_started(link, exc)
            else:
                self.links[link.node] = link
            del self.starting[ref]
        if not self.links:
            raise VidpipeError("no node of the Ray cluster could start a live graph (see the lines above)")
        for link in self.links.values():
            self._adopt(link, ray.get(link.actor.streams.remote(), timeout=CALL_TIMEOUT_S))
        self.view.open(self.live)
        for link in self.links.values():
            log.info("node %s: %s", link.short, link.describe())
        with self.lock:
            self._add_configured(sources)
            for link in self.links.values():
                self._poll(link)

    def _adopt(self, link: NodeLink, running: list[dict[str, Any]]) -> None:
        """Streams a node ran before this front started: the front serves them from now on."""
        for entry in running:
            name, source = entry["name"], entry["source"]
            self.streams[name] = FrontStream(name, source, entry["origin"], demand_of(name, source, self.live),
                                             node=link.node)
        if running:
            log.warning("picked up %d stream%s that node %s runs: %s", len(running), "s"[:len(running) > 1],
                        link.short, ", ".join(sorted(e["name"] for e in running)))
            self.view.pick_up_sent()

    def _add_configured(self, sources: list[tuple[str, SourceSettings]]) -> None:
        waiting = []
        for name, source in sources:
            if (s := self.streams.get(name)) is not None:
                if s.source.uri != source.uri:
                    log.warning("%s: node %s runs it with %s; %s is not started (remove the stream first)", name,
                                self.links[s.node].short, mask_url(s.source.uri), mask_url(source.uri))
                continue
            log.info("source %s: %s", name, mask_url(source.uri))
            self.streams[name] = FrontStream(name, replace(source, name=name), "config",
                                             demand_of(name, source, self.live))
            waiting.append(name)
        placed, refused = spread([self.streams[n].demand for n in waiting], *self.rooms())
        for demand in refused:
            self.failed[demand.name] = line = f"live.sources: {refusal(demand, *self.rooms())}"
            log.error("%s", line)
            self.forget(self.streams[demand.name])
        for name, short in placed.items():
            self._add(self.link_of(short), self.streams[name])

    def _step(self) -> None:
        refs = [*self.polls, *self.adds, *self.starting]
        ready: list[Any] = []
        if refs:
            ready, rest = self.ray.wait(refs, num_returns=1, timeout=STEP_S)
            if ready and rest:
                ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        else:
            self.stop.wait(STEP_S)
        with self.lock:
            for ref in ready:
                self._take(ref)
            now = time.monotonic()
            for link in list(self.links.values()):
                if now - link.heard > self.lost_after:
                    self._lose(link, f"no answer for {now - link.heard:.1f} s")
            if now >= self._refresh_at:
                self._refresh(now)
        self.view.log_status()

    def _more(self) -> bool:
        """A run that neither serves nor has the API ends once it has no stream left."""
        return self.live.serve or (self.live.http and self.live.api) or bool(self.streams) or bool(self.adds)

    def _shutdown(self) -> None:
        """Every node's graph drained (outputs finalized), then every actor of this front ended."""
        links = list(self.links.values())
        drain = self.config.runtime.drain_timeout_s
        stops = [link.actor.stop.remote(drain) for link in links]
        with contextlib.suppress(Exception, KeyboardInterrupt):  # a second Ctrl-C: no more draining
            self.ray.get(stops, timeout=drain + 30)
        for link in [*links, *self.starting.values()]:
            with contextlib.suppress(Exception):
                self.ray.kill(link.actor, no_restart=True)
        if links:
            log.info("stopped %d streams on %d nodes", len(self.streams), len(links))
        self.view.close()
        self.ray.shutdown()

    # -- answers from the nodes (the loop, under the lock) -----------------------------------------
    def _take(self, ref: Any) -> None:
        if ref in self.adds:
            self._added(*self.adds.pop(ref), ref)
        elif ref in self.starting:
            self._joined(self.starting.pop(ref), ref)
        elif (node := self.polls.pop(ref, None)) is not None and node in self.links:
            self._polled(self.links[node], ref)

    def _polled(self, link: NodeLink, ref: Any) -> None:
        link.poll = None
        try:
            report = self.ray.get(ref)
        except self.ray.exceptions.ActorUnavailableError:
            return  # polled again at the next refresh; lost if it stays silent
        except Exception as exc:  # ActorDiedError, or its call failed
            self._lose(link, ray_error(exc))
            return
        link.heard, link.report = time.monotonic(), report
        if report.dropped > link.dropped:
            log.warning("node %s dropped %d events while no front took them", link.short, report.dropped - link.dropped)
            link.dropped = report.dropped
        if report.failed:
            self._lose(link, f"its live graph ended: {report.failed}")
            return
        for seq, kind, data in report.items:
            self._item(link, kind, data)
            link.ack = seq
        for name, info in report.streams.items():
            if (s := self.streams.get(name)) is not None and s.node == link.node:
                self._figures(s, info, report.pictures.get(name))
        self._poll(link)

    def _item(self, link: NodeLink, kind: str, data: dict[str, Any]) -> None:
        s = self.streams.get(data.get("stream", ""))
        if kind == "event":
            self.view.emit(data)
        elif kind == "problem":
            log.error("%s (node %s): %s", data["stream"], link.short, data["message"])
        elif kind == "ended" and s is not None and s.node == link.node:
            if data["error"] and not s.removing:
                self.failed[s.name] = line = f"{s.name} (node {link.short}): {data['error']}"
                log.error("%s", line)
            log.info("source %s: %s", s.name, "removed" if s.removing else "ended")
            self.forget(s)

    def _figures(self, s: FrontStream, info: dict[str, Any], jpeg: bytes | None) -> None:
        s.info = info
        if info.get("width"):
            s.demand = replace(s.demand, width=info["width"], height=info["height"])
        if s.lost_at and info.get("frames"):
            s.failover_s = round(time.monotonic() - s.lost_at, 2)
            s.lost_at = 0.0
            log.warning("%s: labeling again on node %s, %.1f s after its last node last answered", s.name,
                        s.node[:8], s.failover_s)
        self.view.show(s, jpeg)

    def _added(self, name: str, node: str, ref: Any) -> None:
        try:
            code, body = self.ray.get(ref)
        except Exception as exc:  # its node is lost: _lose places it again
            code, body = 503, {"error": one_line(exc)}
        s = self.streams.get(name)
        if s is None or s.node != node:  # removed or moved meanwhile
            if s is None and code == 201 and node in self.links:
                self.links[node].actor.remove.remote(name)
            return
        if code != 201 and node in self.links:
            self.failed[name] = line = f"{name} (node {node[:8]}): {body.get('error', code)}"
            log.error("%s", line)
            self.forget(s)

    def _joined(self, link: NodeLink, ref: Any) -> None:
        try:
            link.info = self.ray.get(ref)
        except Exception as exc:
            self._not_started(link, exc)
            return
        link.heard = time.monotonic()
        self.links[link.node] = link
        log.info("node %s joined: %s", link.short, link.describe())
        self._poll(link)
        self._place_waiting()

    def _not_started(self, link: NodeLink, exc: BaseException) -> None:
        log.error("node %s: its live graph could not start (tried again in %.0f s): %s", link.short, RETRY_NODE_S,
                  ray_error(exc))
        self.retry_at[link.node] = time.monotonic() + RETRY_NODE_S
        with contextlib.suppress(Exception):
            self.ray.kill(link.actor, no_restart=True)

    # -- nodes lost and found, streams placed (the loop, under the lock) ------------------------
    def _lose(self, link: NodeLink, why: str) -> None:
        """`link`'s node is lost: its actor is killed, its streams go to the nodes left."""
        self.links.pop(link.node, None)
        self.lost[link.node] = link
        self.retry_at[link.node] = time.monotonic() + self.config.cluster.failover_s  # its actor's name is free by then
        with contextlib.suppress(Exception):
            self.ray.kill(link.actor, no_restart=True)
        moved = [s for s in self.streams.values() if s.node == link.node]
        log.warning("node %s lost (%s): %d streams to move", link.short, why, len(moved))
        for s in moved:
            if s.removing:
                self.forget(s)
                continue
            s.node, s.moves = "", s.moves + 1
            s.lost_at = s.lost_at or link.heard
            s.info = {**s.info, "state": "moving"}
            self.view.show(s, None)
        self._place_waiting()

    def _refresh(self, now: float) -> None:
        self._refresh_at = now + REFRESH_S
        alive = set(eligible_nodes(self.ray, self.config))
        for node, link in list(self.links.items()):
            if node not in alive:
                self._lose(link, "Ray reports it dead")
            elif link.poll is None:
                self._poll(link)
        starting = {link.node for link in self.starting.values()}
        for node in sorted(alive - set(self.links) - starting):
            if self.retry_at.get(node, 0.0) <= now:
                link = NodeLink(node, start_actor(self.ray, self.config, node))
                self.starting[link.actor.ready.remote(START_TIMEOUT_S)] = link
                log.info("node %s: starting its live graph", link.short)
        self._place_waiting()

    def _place_waiting(self) -> None:
        waiting = [s.demand for s in self.streams.values() if not s.node and not s.removing]
        if not waiting:
            return
        placed, refused = spread(waiting, *self.rooms())
        for name, short in placed.items():
            self._add(self.link_of(short), self.streams[name])
        for demand in refused:
            s = self.streams[demand.name]
            if s.info.get("state") != "waiting":
                log.warning("%s; it waits for room", refusal(demand, *self.rooms()))
                s.info = {**s.info, "state": "waiting"}
                self.view.show(s, None)

    def rooms(self) -> tuple[list[NodeRoom], dict[str, Load]]:
        cap = self.config.cluster.max_streams_per_node or 0
        rooms = [link.room(cap) for link in self.links.values()]
        loads = {link.short: load_of(s.demand for s in self.streams.values() if s.node == link.node)
                 for link in self.links.values()}
        return rooms, loads

    def link_of(self, short: str) -> NodeLink:
        return next(link for link in self.links.values() if link.short == short)

    def _add(self, link: NodeLink, s: FrontStream) -> None:
        s.node = link.node
        self.adds[link.actor.add.remote(s.source, s.origin)] = (s.name, link.node)
        self.view.show(s, None)

    def _poll(self, link: NodeLink) -> None:
        if link.report is None:  # its first poll: its silence counts from now
            link.heard = time.monotonic()
        link.poll = link.actor.poll.remote(link.ack, POLL_WAIT_S)
        self.polls[link.poll] = link.node

    def forget(self, s: FrontStream) -> None:
        self.streams.pop(s.name, None)
        self.view.remove(s.name)


def _signals_to(handler: Any) -> dict[int, Any]:
    """SIGINT and SIGTERM call `handler()` (on the main thread; elsewhere nothing): the old handlers."""
    old: dict[int, Any] = {}
    with contextlib.suppress(ValueError):  # not the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: handler())
    return old

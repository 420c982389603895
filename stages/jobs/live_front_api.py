"""/api/streams of a live front on Ray (stages.jobs.live_ray), answered as a host's own are
(stages.web.api parses and checks the bodies): a stream added goes to the node with the most room
(stages.jobs.placement), or is refused in one line (400) when none has room; one removed ends on its
node, and leaves the page once its node says its outputs are finalized. Called on the server's
threads: the front's tables are taken under its lock, never while a node is asked."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vidpipe.pipeline.errors import one_line
from vidpipe.pipeline.redact import mask_url
from vidpipe.stages.config import SourceSettings
from vidpipe.stages.jobs.live import refuse_stream
from vidpipe.stages.jobs.live_nodes import FrontStream, camera_line, demand_of
from vidpipe.stages.jobs.placement import most_room, refusal
from vidpipe.stages.sources.naming import stream_name
from vidpipe.stages.sources.readers import source_kind
from vidpipe.stages.web.control import AddStream, ListStreams, RemoveStream, Reply

if TYPE_CHECKING:
    from vidpipe.stages.jobs.live_ray import LiveFront

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 60.0  # an add or remove on a node


class FrontApi:
    """The `request` of stages.web.api.StreamsApi for the front."""

    def __init__(self, front: LiveFront) -> None:
        self.front = front

    def request(self, body: Any) -> Reply:
        if isinstance(body, AddStream):
            return Reply(0, *self.add_stream(body.source))
        if isinstance(body, RemoveStream):
            return Reply(0, *self.remove_stream(body.name))
        if isinstance(body, ListStreams):
            return Reply(0, *self.list_streams())
        return Reply(0, 400, {"error": f"unknown request {type(body).__name__}"})

    def add_stream(self, source: SourceSettings, where: str = "POST /api/streams") -> tuple[int, dict[str, Any]]:
        front = self.front
        name = stream_name(source)
        demand = demand_of(name, source, front.live)
        with front.lock:
            taken = {n: s.removing for n, s in front.streams.items()}
            if (refused := refuse_stream(source, where, taken, front.live.max_streams)) is not None:
                return refused
            if source_kind(source.uri) == "camera":
                return 400, {"error": f"{where}: uri: {camera_line(name, source)}", "key": "uri"}
            short = most_room(demand, *front.rooms())
            if short is None:
                return 400, {"error": f"{where}: {refusal(demand, *front.rooms())}", "key": ""}
            link = front.link_of(short)
            s = front.streams[name] = FrontStream(name, replace(source, name=name), "api", demand, node=link.node)
            front.view.show(s, None)
        try:
            code, body = front.ray.get(link.actor.add.remote(s.source, "api"), timeout=CALL_TIMEOUT_S)
        except Exception as exc:
            code, body = 503, {"error": f"{where}: node {link.short}: {one_line(exc)}"}
        with front.lock:
            if code != 201:
                if front.streams.get(name) is s and s.node == link.node:
                    front.forget(s)
                return code, body
            log.info("source %s added on node %s: %s", name, link.short, mask_url(source.uri))
            return code, {"stream": front.view.describe(s)}

    def list_streams(self) -> tuple[int, dict[str, Any]]:
        with self.front.lock:
            return 200, {"streams": [self.front.view.describe(s) for s in self.front.streams.values()]}

    def remove_stream(self, name: str, where: str = "") -> tuple[int, dict[str, Any]]:
        front = self.front
        with front.lock:
            s = front.streams.get(name)
            if s is None or s.removing:
                return 400, {"error": f"DELETE /api/streams/{name}: name: no stream named {name!r}", "key": "name"}
            s.removing = True
            link = front.links.get(s.node)
            if link is None:  # placed nowhere: nothing runs
                front.forget(s)
                return 200, {"stream": front.view.describe(s)}
        with contextlib.suppress(Exception):  # its node lost meanwhile: forgotten with the node
            front.ray.get(link.actor.remove.remote(name), timeout=CALL_TIMEOUT_S)
        log.info("source %s: removing", name)
        return 200, {"stream": front.view.describe(s)}

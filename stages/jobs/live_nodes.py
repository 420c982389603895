"""What the live front (stages.jobs.live_ray) keeps of the cluster: a link per node's actor, a record
per stream, and how each is made.

    eligible_nodes(ray, config)      alive nodes with a card (alveo) or cluster.cpus_per_worker CPUs
    start_actor(ray, config, node)   its LiveNode (stages.jobs.live_actor): pinned to the node, detached,
                                     named after OUT and the node, so a front started again finds it
    NodeLink                         the actor, what it measured, its poll in flight, when it last answered
    FrontStream                      a stream: settings, demand, the node it runs on, its figures, moves
    demand_of(source, live)          what a stream asks of a node (stages.jobs.placement)
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from vidpipe.hw.registry import backend_spec
from vidpipe.pipeline.errors import ConfigError, VidpipeError, one_line
from vidpipe.stages.config import JobConfig, LiveSettings, SourceSettings
from vidpipe.stages.jobs.live import openable
from vidpipe.stages.jobs.live_actor import LiveNode, NodeInfo, NodeReport
from vidpipe.stages.jobs.placement import Demand, NodeRoom
from vidpipe.stages.sources.files import probe
from vidpipe.stages.sources.readers import source_kind

log = logging.getLogger(__name__)

NAMESPACE = "vidpipe"  # of the named actors
UNKNOWN_FPS = 30.0  # a network stream's rate before it runs (its size: live.max_width x max_height)
MAX_CONCURRENCY = 8  # an actor's calls at once: polls, adds, removes, a stop


@dataclass
class NodeLink:
    """The front's link to one node's actor."""

    node: str  # Ray node id
    actor: Any
    info: NodeInfo | None = None  # None while its graph starts
    ack: int = 0  # the last item taken from it
    poll: Any = None  # the poll in flight (an ObjectRef)
    heard: float = 0.0  # monotonic time of its last answer
    report: NodeReport | None = None  # its last answer
    dropped: int = 0  # events it dropped while no front took them, as last said

    @property
    def short(self) -> str:
        return self.node[:8]

    def describe(self) -> str:
        i = self.info
        return "starting" if i is None else (f"{i.host}, run {i.run}, card {i.card_fps:.0f} fps, CPUs "
                                              f"{i.pixel_rate / 1e6:.0f} Mpixel/s")

    def room(self, max_streams: int) -> NodeRoom:
        assert self.info is not None
        return NodeRoom(self.short, self.info.card_fps, self.info.pixel_rate, max_streams)


@dataclass
class FrontStream:
    """A stream the front serves; `node` is where it runs ("" while it waits for room)."""

    name: str
    source: SourceSettings
    origin: str  # config | api
    demand: Demand
    node: str = ""
    removing: bool = False
    info: dict[str, Any] = field(default_factory=dict)  # its node's latest figures
    moves: int = 0  # times its node was lost
    lost_at: float = 0.0  # monotonic: its last node's last answer, until it labels again elsewhere
    failover_s: float | None = None  # the last move: that answer -> its first label on the new node


def front_key(config: JobConfig) -> str:
    """Names the actors of one front: fronts with other output folders share a cluster."""
    return hashlib.sha1(os.path.realpath(config.output.dir).encode()).hexdigest()[:10]


def eligible_nodes(ray: Any, config: JobConfig) -> list[str]:
    """The alive nodes a live graph may run on: with a card for a card backend, else enough CPUs."""
    card = backend_spec(config.backend).card_resource
    need = {card: 1.0} if card is not None else {"CPU": config.cluster.cpus_per_worker}
    return sorted(n["NodeID"] for n in ray.nodes()
                  if n["Alive"] and all(n["Resources"].get(k, 0) >= v for k, v in need.items()))


def check_cluster(ray: Any, config: JobConfig) -> None:
    """One line if no node could run a live graph."""
    if not eligible_nodes(ray, config):
        card = backend_spec(config.backend).card_resource
        wanted = f"an {card!r} resource" if card else f"{config.cluster.cpus_per_worker:g} CPUs"
        hint = f"ray start --resources '{{\"{card}\": 1}}'" if card else "lower cluster.cpus_per_worker"
        raise VidpipeError(f"the Ray cluster has no node with {wanted} for backend {config.backend.name} "
                           f"to run live streams on: {hint}")


def start_actor(ray: Any, config: JobConfig, node: str) -> Any:
    """The node's actor: the running one of this front's output folder, else a new one."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    card = backend_spec(config.backend).card_resource
    return ray.remote(LiveNode).options(
        name=f"vidpipe-live-{front_key(config)}-{node[:16]}", namespace=NAMESPACE, get_if_exists=True,
        lifetime="detached", max_restarts=0, max_concurrency=MAX_CONCURRENCY,
        num_cpus=0 if card else config.cluster.cpus_per_worker, resources={card: 1.0} if card else {},
        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(config)


def front_sources(live: LiveSettings) -> tuple[list[tuple[str, SourceSettings]], dict[str, str]]:
    """The configured sources a front can place, with their names, and those that can never open
    (stages.jobs.live.openable); ConfigError, one line each, for what cannot run on Ray at all."""
    if not live.sources and not live.serve:
        raise ConfigError("live: no sources (give them on the command line or in live.sources, or --serve to "
                          "wait for streams added over the API)", key="live.sources")
    if live.display:
        raise ConfigError("live.display: not with --ray (the streams run on the cluster's nodes)", key="live.display")
    sources, problems = openable(live)
    if cameras := [f"live.sources: {camera_line(n, s)}" for n, s in sources if source_kind(s.uri) == "camera"]:
        raise ConfigError("\n".join(cameras), key="live.sources")
    return sources, problems


def demand_of(name: str, source: SourceSettings, live: LiveSettings) -> Demand:
    """A file's own size and rate (probed: files are on storage every node sees); a slideshow's rate;
    for anything else the largest frame at UNKNOWN_FPS, until its node says its size."""
    kind = source_kind(source.uri)
    if kind == "file":
        try:
            info = probe(source.uri, name)
            return Demand(name, info.width, info.height, info.fps or UNKNOWN_FPS)
        except VidpipeError as exc:
            log.debug("%s: cannot probe (%s): assumed the largest frame", name, exc)
    fps = source.slideshow_fps if kind == "folder" else UNKNOWN_FPS
    return Demand(name, live.max_width, live.max_height, fps)


def camera_line(name: str, source: SourceSettings) -> str:
    return (f"{name} ({source.uri}): a camera of one host cannot move between Ray nodes: give its network stream "
            "(rtsp://..., http://...)")


def ray_error(exc: BaseException) -> str:
    """One short line: the error an actor raised (the last line of its remote traceback), else the
    first sentence of Ray's paragraph (ActorDiedError: The actor died unexpectedly...)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if any(line.startswith("File ") for line in lines):
        return lines[-1]
    return one_line(exc).split(". ", 1)[0]

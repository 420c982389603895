"""Where live streams run on a Ray cluster: each node's room, each stream's demand, the node with the
most room. Pure functions: the front (stages.jobs.live_ray) keeps the state.

    nodes = [NodeRoom("a1b2c3d4", card_fps=1143, pixel_rate=90e6, max_streams=0), ...]
    node = most_room(Demand("door", 1280, 720, 25), nodes, loads)   # None: it fits nowhere
    placed, refused = spread(demands, nodes, loads)                    # a batch, largest first

A node has three budgets: its card's measured rate (frames/s: every frame of every stream goes
through it), its CPUs' rate for decoding and preprocessing (pixels/s: a frame costs about its
size), and cluster.max_streams_per_node. A stream takes `fps` frames/s of the first and
width x height x fps pixels/s of the second. It fits on a node when no budget would go over; of
the nodes it fits on, it goes to the one whose tightest budget keeps the largest share free
afterwards (ties: fewer streams, then the node name), so that nodes fill evenly whatever their
size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class NodeRoom:
    """A node's budgets (what its live graph measured when it started)."""

    node: str
    card_fps: float  # frames/s the backend labels at the live batch size
    pixel_rate: float  # pixels/s its CPUs decode and preprocess
    max_streams: int = 0  # 0: no cap but the budgets


@dataclass(frozen=True)
class Demand:
    """What one stream asks of a node."""

    name: str
    width: int
    height: int
    fps: float

    @property
    def pixels_s(self) -> float:
        return float(self.width * self.height) * self.fps

    def describe(self) -> str:
        return f"{self.width}x{self.height} at {self.fps:g} fps"


@dataclass(frozen=True)
class Load:
    """What a node carries."""

    fps: float = 0.0
    pixels_s: float = 0.0
    streams: int = 0

    def plus(self, demand: Demand) -> Load:
        return Load(self.fps + demand.fps, self.pixels_s + demand.pixels_s, self.streams + 1)


def load_of(demands: Iterable[Demand]) -> Load:
    load = Load()
    for demand in demands:
        load = load.plus(demand)
    return load


def room_after(node: NodeRoom, load: Load, demand: Demand) -> float | None:
    """The share of its tightest budget `node` keeps free with `demand` added; None: it does not fit."""
    after = load.plus(demand)
    if node.max_streams and after.streams > node.max_streams:
        return None
    shares = [1.0 - after.fps / node.card_fps if node.card_fps > 0 else -1.0,
              1.0 - after.pixels_s / node.pixel_rate if node.pixel_rate > 0 else -1.0]
    if node.max_streams:
        shares.append(1.0 - after.streams / node.max_streams)
    tightest = min(shares)
    return tightest if tightest >= 0 else None


def most_room(demand: Demand, nodes: Iterable[NodeRoom], loads: Mapping[str, Load]) -> str | None:
    """The node `demand` goes to (see the module docstring), or None when it fits on none."""
    best: tuple[float, int, str] | None = None
    for node in nodes:
        load = loads.get(node.node, Load())
        room = room_after(node, load, demand)
        if room is None:
            continue
        key = (-room, load.streams, node.node)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]


def spread(demands: Iterable[Demand], nodes: Iterable[NodeRoom],
           loads: Mapping[str, Load]) -> tuple[dict[str, str], list[Demand]]:
    """Each demand placed in turn, the largest (pixels/s) first, on the node with the most room
    given those placed before it: (stream -> node, the demands that fit nowhere)."""
    nodes = list(nodes)
    loads = dict(loads)
    placed: dict[str, str] = {}
    refused: list[Demand] = []
    for demand in sorted(demands, key=lambda d: (-d.pixels_s, d.name)):
        node = most_room(demand, nodes, loads)
        if node is None:
            refused.append(demand)
            continue
        placed[demand.name] = node
        loads[node] = loads.get(node, Load()).plus(demand)
    return placed, refused


def refusal(demand: Demand, nodes: Iterable[NodeRoom], loads: Mapping[str, Load]) -> str:
    """One line: why `demand` fits on no node, each node's tightest budget named."""
    parts = []
    for node in nodes:
        load = loads.get(node.node, Load())
        if node.max_streams and load.streams >= node.max_streams:
            parts.append(f"{node.node} has {load.streams} streams (cluster.max_streams_per_node)")
        elif load.fps + demand.fps > node.card_fps:
            parts.append(f"{node.node}'s card labels {load.fps:.0f} of {node.card_fps:.0f} fps")
        else:
            parts.append(f"{node.node}'s CPUs decode {load.pixels_s / 1e6:.0f} of {node.pixel_rate / 1e6:.0f} Mpixel/s")
    where = "; ".join(parts) if parts else "no node is ready"
    return f"{demand.name} ({demand.describe()}) fits on no node: {where}"

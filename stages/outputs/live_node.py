"""The outputs of a live graph on a Ray node (stages.jobs.live_actor), in its sink process.

They are a host's own (stages.outputs.live: JSONL, recordings, clips, snapshots and the label index
into OUT, on storage every node sees), less what the front (stages.jobs.live_ray) does for every
node: no HTTP server and no event senders here. Instead, through the sink's report to the actor:

    each stream's figures (fps, latency, state...) and newest annotated frame   NodePreview, a JPEG at
        most cluster.preview_fps a second (the figures at least once a second)
    the card's busy ratio                                                        NodeLoad, once a second
    label and clip events                                                        LiveEvent (the `python`
                                                                                 sender), run id included

A sink whose actor is gone (killed, crashed, its node cut off) writes nothing more: the actor is its
parent (the supervisor runs in it), and every frame checks that, so a stream moved to another node
never has two writers; the sink fails, and the orphaned stages then end as after any kill -9 of
their supervisor.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from vidpipe.pipeline.events import Event
from vidpipe.stages.config import LiveSettings, OutputSettings
from vidpipe.stages.descriptors import LabelInfo, Result, StreamStart
from vidpipe.stages.outputs.events import EventOutputs
from vidpipe.stages.outputs.live import LiveOutputsFactory, LiveStreamOutputs
from vidpipe.stages.outputs.live_records import RunInfo
from vidpipe.stages.sink import Lane
from vidpipe.stages.web.liveview import encode_jpeg
from vidpipe.stages.web.metrics import Metrics

FIGURES_PERIOD_S = 1.0  # figures without pictures (preview_fps 0), and the node's load, this often


@dataclass(frozen=True)
class NodePreview(Event):
    """What the page shows of `stream` (`jpeg` None: the figures only); `removed`: it left."""

    stream: str
    jpeg: bytes | None
    info: dict[str, Any]
    removed: bool = False


@dataclass(frozen=True)
class NodeLoad(Event):
    """The node's card: infer process -> busy ratio (a batch in flight), over its last report."""

    busy: dict[str, float]


class NodeGone(RuntimeError):
    """The actor that runs this graph is gone: its sink writes nothing more."""


class RelayView:
    """In place of the LiveView in a node's sink: what it would show is relayed to the actor
    (see the module docstring). Called on the sink's thread only."""

    url = ""

    def __init__(self, outputs: NodeOutputsFactory, fps: float, quality: int) -> None:
        self._outputs = outputs
        self._pictures = fps > 0
        self._period = 1.0 / fps if fps > 0 else FIGURES_PERIOD_S
        self._quality = quality
        self._due: dict[str, float] = {}  # stream -> when its next frame is relayed
        self._load_due = 0.0

    def publish(self, stream: str, image: bytes | np.ndarray | None, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if image is not None:  # a frame; without one, a source's state (about once a second)
            if now < self._due.get(stream, 0.0):
                return
            self._due[stream] = now + self._period
        jpeg = None
        if image is not None and self._pictures:
            jpeg = image if isinstance(image, bytes) else encode_jpeg(image, self._quality)
        report = self._outputs.report
        report(NodePreview(stream, jpeg, {**info, **self._outputs.sizes.get(stream, {})}))
        if now >= self._load_due:
            self._load_due = now + FIGURES_PERIOD_S
            busy = self._outputs.metrics.counts()["accelerators"]
            report(NodeLoad({name: b["busy_ratio"] for name, b in busy.items()}))

    def remove(self, stream: str) -> None:
        self._due.pop(stream, None)
        self._outputs.report(NodePreview(stream, None, {}, removed=True))

    def has_stream(self, stream: str) -> bool:
        return stream in self._due

    def close(self) -> None:
        """Nothing to stop: no server."""


class _NodeStreamOutputs(LiveStreamOutputs):
    shared: NodeOutputsFactory

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> None:
        self.shared.check_owner()  # before anything is written
        super().write(result, frame, t_sink)


class NodeOutputsFactory(LiveOutputsFactory):
    """LiveOutputsFactory for a node's graph: see the module docstring. Picklable, as its base."""

    stream_outputs = _NodeStreamOutputs

    def __init__(self, live: LiveSettings, output: OutputSettings, control: Any = None, run: RunInfo | None = None,
                 preview_fps: float = 2.0) -> None:
        super().__init__(live, output, control, run)
        self.preview_fps = preview_fps
        self.sizes: dict[str, dict[str, int]] = {}  # stream -> its frames' width and height
        self._parent = 0

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "preview_fps": self.preview_fps}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["live"], state["output"], state["control"], state["run"],  # type: ignore[misc]
                      state["preview_fps"])

    @property
    def web(self) -> bool:
        return False  # a JPEG is made only when a preview is due (RelayView), not for every frame

    def _open(self) -> None:
        super()._open()
        self._parent = os.getppid()
        self._view = RelayView(self, self.preview_fps, self.live.clips.jpeg_quality)  # type: ignore[assignment]

    def _event_outputs(self, metrics: Metrics) -> EventOutputs:
        relay_only = replace(self.live.events, jsonl=False, webhook="", mqtt="", extra={})
        return EventOutputs(relay_only, Path(self.output.dir), metrics, self.run.run_id, self.report,
                            report_events=True)

    def check_owner(self) -> None:
        if self._parent and os.getppid() != self._parent:
            raise NodeGone("the node's live actor is gone: this sink writes nothing more")

    def __call__(self, start: StreamStart, labels: LabelInfo, lane: Lane | None = None) -> LiveStreamOutputs:
        self.sizes[start.stream] = {"width": start.width, "height": start.height}
        return super().__call__(start, labels, lane)

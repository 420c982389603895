"""One Ray node's live streams: a long-lived actor running vidpipe's own live graph (stages.jobs.live,
restarts of crashed stages included) for the streams the front (stages.jobs.live_ray) places on its
node.

    front --add(source) / remove(name) / streams()--> LiveNode (a Ray actor: detached, named after
          <--poll(ack): NodeReport-------------------   OUT and its node, pinned to that node)
                                                          | JobRun: NodeJob on a thread (supervisor)
                                                          | sink: stages.outputs.live_node

The graph writes JSONL, recordings, clips, snapshots and the label index into OUT (storage every
node sees) with a run id of its own, so (run, stream, frame) stays a key when a stream moves. What
the front serves comes back through poll(): each stream's figures and newest picture (state:
the latest only), and a log of items, each with a sequence number, that the front acknowledges in
its next poll (`ack`): label and clip events, streams that ended, sources' problems. An item is
sent again only to a front that did not acknowledge it (one started again after a crash), so each
reaches the front once. The actor outlives its front (detached): a front started again picks up
its streams (streams()).

When it starts, the actor measures its node's room for placement (stages.jobs.placement): the
backend's rate at the live batch size, and the pixels/s one core decodes and preprocesses.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import av
import cv2
import numpy as np

from vidpipe.hw.registry import create_backend
from vidpipe.hw.settings import BackendSettings
from vidpipe.pipeline.errors import one_line
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.supervisor import Supervisor
from vidpipe.stages.config import JobConfig, SourceSettings
from vidpipe.stages.events import LiveEvent, SourceProblem, StreamDone
from vidpipe.stages.jobs.graph import run_job
from vidpipe.stages.jobs.handles import JobRun
from vidpipe.stages.jobs.live import LiveJob
from vidpipe.stages.jobs.ray_worker import card_for_task, sized_for_the_task, task_cpus
from vidpipe.stages.outputs.live import LiveOutputsFactory
from vidpipe.stages.outputs.live_node import NodeLoad, NodeOutputsFactory, NodePreview

log = logging.getLogger(__name__)

MAX_ITEMS = 10_000  # items waiting for a front that is away; beyond, the oldest are dropped and counted
HEADROOM = 0.75  # of the CPUs' measured pixel rate: the sink, the encoders and the system take the rest
PROBE = (640, 360, 24)  # the clip the pixel rate is measured on: width, height, frames


@dataclass(frozen=True)
class NodeInfo:
    """A node's live graph, as it started."""

    node: str  # the Ray node id
    host: str
    run: str  # the graph's run id (in every JSONL line and event it makes)
    card_fps: float  # measured
    pixel_rate: float  # pixels/s its CPUs decode and preprocess (measured per core x CPUs x HEADROOM)
    cpus: float


@dataclass(frozen=True)
class NodeReport:
    """One poll's answer; see the module docstring."""

    streams: dict[str, dict[str, Any]]  # the running streams: name -> uri, origin, figures (fps, state...)
    pictures: dict[str, bytes]  # name -> its newest JPEG since the last poll
    items: tuple[tuple[int, str, dict[str, Any]], ...]  # (seq, kind, data) after `ack`: event, ended, problem
    busy: dict[str, float] = field(default_factory=dict)  # infer process -> busy ratio
    dropped: int = 0  # items dropped while no front took them
    failed: str = ""  # the graph has ended: why


class NodeJob(LiveJob):
    """A node's live job: streams come from the front only; its sink relays (NodeOutputsFactory)."""

    def __init__(self, config: JobConfig, preview_fps: float) -> None:
        super().__init__(config)
        self.preview_fps = preview_fps
        self.attached = threading.Event()

    def _outputs_factory(self, control: Any) -> LiveOutputsFactory:
        return NodeOutputsFactory(self.live, self.config.output, control, self.run, self.preview_fps)

    def attach(self, supervisor: Supervisor) -> None:
        super().attach(supervisor)
        self.attached.set()

    def running(self) -> list[dict[str, Any]]:
        """The streams that run (not being removed), with their settings; on the supervisor's thread."""
        self._forget_stopped()
        return [{"name": s.name, "source": s.source, "origin": s.origin}
                for s in self.streams.values() if not s.removing]


def node_config(config: JobConfig, backend: BackendSettings) -> JobConfig:
    """The front's config as a node's graph runs it: no sources of its own, no page, no senders."""
    live = replace(config.live, sources=(), serve=True, http=False, api=False, display=False,
                   report_frames=False, report_events=False)
    return sized_for_the_task(replace(config, job="live", backend=backend, live=live,
                                      output=replace(config.output, progress=False)))


class LiveNode:
    """The actor (the front wraps it with ray.remote); thread-safe: Ray runs its calls on several
    threads (max_concurrency), the graph's events come on the supervisor's."""

    def __init__(self, config: JobConfig) -> None:
        import ray

        self._cond = threading.Condition()
        self._items: deque[tuple[int, str, dict[str, Any]]] = deque()
        self._seq = self._dropped = 0
        self._figures: dict[str, dict[str, Any]] = {}
        self._pictures: dict[str, bytes] = {}
        self._busy: dict[str, float] = {}
        self._card = contextlib.ExitStack()
        backend = self._card.enter_context(card_for_task(config))
        config = node_config(config, backend)
        cpus = task_cpus(config)
        card_fps, pixel_rate = measure_card(config.backend), measure_pixel_rate() * cpus * HEADROOM
        self.job = NodeJob(config, config.cluster.preview_fps)
        node = ray.get_runtime_context().get_node_id()
        self.info = NodeInfo(node, socket.gethostname(), self.job.run.run_id, card_fps, pixel_rate, cpus)
        self._run = JobRun(self.job, run_job, logging.INFO, on_event=self._on_event).start()
        log.info("live graph of node %s (%s): run %s, card %.0f fps, CPUs %.0f Mpixel/s", node[:8],
                 self.info.host, self.info.run, card_fps, pixel_rate / 1e6)

    # -- called by the front -------------------------------------------------------------------
    def ready(self, timeout_s: float = 120.0) -> NodeInfo:
        """The node's info once its graph runs; the graph's error if it could not start."""
        if not self.job.attached.wait(timeout_s):
            self._run.join(0)  # raises what ended it, if anything did
            raise TimeoutError(f"the live graph of {self.info.host} did not start within {timeout_s:.0f} s")
        return self.info

    def add(self, source: SourceSettings, origin: str) -> tuple[int, dict[str, Any]]:
        """Start a stream (LiveJob.add_stream: 201, or 400/503 with one line)."""
        return self._run.caller.call_in_job(lambda job: job.add_stream(source, origin))

    def remove(self, name: str) -> tuple[int, dict[str, Any]]:
        return self._run.caller.call_in_job(lambda job: job.remove_stream(name, "front"))

    def streams(self) -> list[dict[str, Any]]:
        """What runs here, with each stream's settings (for a front that starts again)."""
        return list(self._run.caller.call_in_job(lambda job: job.running()))

    def poll(self, ack: int, wait_s: float) -> NodeReport:
        """The items after `ack` (waiting up to `wait_s` for one), the streams' figures and pictures."""
        with self._cond:
            while self._items and self._items[0][0] <= ack:
                self._items.popleft()
            self._cond.wait_for(lambda: bool(self._items), wait_s)
            items, pictures, self._pictures = tuple(self._items), self._pictures, {}
            figures, busy, dropped = dict(self._figures), dict(self._busy), self._dropped
        status = self._run.status()
        if status.state in ("done", "failed"):
            return NodeReport({}, {}, items, busy, dropped, status.error or "its live graph ended")
        running = self._run.caller.call_in_job(lambda job: job.list_streams())[1]["streams"]
        streams = {s["name"]: {**s, **figures.get(s["name"], {})} for s in running}
        return NodeReport(streams, pictures, items, busy, dropped)

    def stop(self, timeout_s: float) -> bool:
        """Drain the graph (every stream's outputs finalized); True once it has ended."""
        self._run.stop()
        try:
            ended = self._run.join(timeout_s)
        except Exception as exc:  # it failed: it has ended all the same
            log.warning("the live graph ended with: %s", one_line(exc))
            ended = True
        if ended:
            self._card.close()
        return ended

    # -- the graph's events (supervisor's thread: never blocks) ---------------------------------
    def _on_event(self, event: Event) -> None:
        if isinstance(event, NodePreview):
            with self._cond:
                if event.removed:
                    self._figures.pop(event.stream, None)
                    self._pictures.pop(event.stream, None)
                else:
                    self._figures[event.stream] = event.info
                    if event.jpeg is not None:
                        self._pictures[event.stream] = event.jpeg
        elif isinstance(event, NodeLoad):
            with self._cond:
                self._busy = event.busy
        elif isinstance(event, LiveEvent):
            self._log("event", event.data)
        elif isinstance(event, StreamDone):
            self._log("ended", {"stream": event.stream, "error": event.error})
        elif isinstance(event, SourceProblem):
            self._log("problem", {"stream": event.stream, "message": event.message})

    def _log(self, kind: str, data: dict[str, Any]) -> None:
        with self._cond:
            self._seq += 1
            self._items.append((self._seq, kind, data))
            if len(self._items) > MAX_ITEMS:
                self._items.popleft()
                self._dropped += 1
            self._cond.notify_all()


def measure_card(backend: BackendSettings, batches: int = 8) -> float:
    """Frames/s the backend labels in full batches of backend.batch, two in flight (as infer runs)."""
    acc = create_backend(backend, 0)
    acc.open()
    try:
        n = backend.batch
        for k in (0, 1):
            acc.input_buffer(k)[:n] = 0
        acc.start(0, n)
        acc.wait(0)  # a first batch warms the backend up
        t0 = time.perf_counter()
        acc.start(0, n)
        for i in range(1, batches):
            acc.start(i % 2, n)
            acc.wait((i - 1) % 2)
        acc.wait((batches - 1) % 2)
        return n * batches / (time.perf_counter() - t0)
    finally:
        acc.close()


def measure_pixel_rate() -> float:
    """Pixels/s one core decodes (H.264, one thread) and preprocesses (a resize to 224x224), on a
    clip of moving gradients made here."""
    width, height, frames = PROBE
    clip = io.BytesIO()
    y, x = np.mgrid[0:height, 0:width]
    with av.open(clip, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(25, 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(frames):
            image = np.dstack([(x + 4 * i) % 256, (y + 3 * i) % 256, (x + y + i) % 256]).astype(np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(stream.encode(None))
    clip.seek(0)
    t0 = time.perf_counter()
    with av.open(clip, "r") as source:
        video = source.streams.video[0]
        video.thread_count = 1
        for frame in source.decode(video):
            cv2.resize(frame.to_ndarray(format="bgr24"), (224, 224))
    return float(width * height * frames) / (time.perf_counter() - t0)

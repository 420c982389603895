"""The work of a Ray worker: vidpipe's own multiprocess graph on the worker's host, labeling the
videos the driver (stages.jobs.ray_driver) sends it.

    WorkerJob(config, max_frame_bytes)            a warm worker's graph (stages.jobs.ray_actor): open,
        job.label(video) -> StreamDone             takes videos as they come, until drain()
    label_videos(config, videos, out_dir)         a Ray task (the fallback): one graph for these
        -> [VideoResult]                           videos (one, or several short ones), then it ends

WorkerJob is a Job (stages.jobs.base) run by run_job as any other: it composes the label job's
graph (LabelGraph) and its record of the inputs (LabelRecord, without a manifest); the driver plans, keeps the manifest
and writes the summary. Outputs are written into a private staging folder,
OUT/.vidpipe-staging/pid-PID-RANDOM/, and each video's are moved into OUT (os.replace: atomic,
same filesystem) only once that video is complete. A worker or a node lost mid-video leaves only
its staging folder (the driver removes them); the video runs again elsewhere and writes its own. So
OUT only ever holds complete outputs, each published once per successful attempt, with the same
content as a one-host run.

Cards: a host started with `ray start --resources '{"alveo": N}'` runs at most N such workers at
once (Ray counts them); each takes the first free card index by a lock file per node and card.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from vidpipe.hw.registry import backend_spec
from vidpipe.hw.settings import BackendSettings
from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.config import replace_path
from vidpipe.pipeline.errors import SourceError, VidpipeError, one_line
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.logs import setup_main_logging, shutdown_main_logging
from vidpipe.pipeline.redact import printable
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.supervisor import ProcSpec, Supervisor
from vidpipe.stages.config import JobConfig, default_open_sources, max_open_sources
from vidpipe.stages.events import StreamDone
from vidpipe.stages.jobs.base import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, GraphPlan, GraphShape
from vidpipe.stages.jobs.graph import run_job
from vidpipe.stages.jobs.label_graph import LabelGraph
from vidpipe.stages.jobs.label_record import LabelRecord
from vidpipe.stages.outputs.label import output_names
from vidpipe.stages.sink import OutputsFactory
from vidpipe.stages.sources.files import VideoInfo, largest_frame_bytes

log = logging.getLogger(__name__)

STAGING = ".vidpipe-staging"  # inside OUT: on the same filesystem, so publishing is a rename


@dataclass(frozen=True)
class VideoResult:
    stream: str
    host: str  # the host, its Ray node and the worker's pid
    frames: int = 0
    seconds: float = 0.0
    error: str = ""  # one line, naming the host where it matters
    top: tuple[tuple[str, float], ...] = ()
    unfinished: bool = False  # the worker's graph ended before the video did (`error` says why): run it again


class WorkerJob:
    """See the module docstring. `videos`: exactly these, then the graph ends (a task); None: the
    graph stays open for the videos `label()` puts on its queue, until `drain()` (a warm worker).
    `label()` and `drain()` are called from other threads than the supervisor's."""

    def __init__(self, config: JobConfig, max_frame_bytes: int, videos: list[VideoInfo] | None = None) -> None:
        self.config = config
        self.max_frame_bytes = max_frame_bytes  # the largest frame of the videos it may get
        self.videos = videos
        self.graph = LabelGraph(config)
        self.record = LabelRecord(config)
        self.report = self.record.report
        self.attached = threading.Event()  # the graph runs
        self._supervisor: Supervisor | None = None
        self._cond = threading.Condition()  # a StreamDone came, or the graph ended
        self._ended = False
        self._draining = False

    def prepare(self) -> GraphShape:
        return self.graph.shape(self.max_frame_bytes, self._decoders(), open_sources=self.videos is None)

    def _decoders(self) -> int:
        files = max_open_sources(self.config)
        return files if self.videos is None else min(len(self.videos), files)

    def sources(self, frames: SlotRing, outbox: Channel) -> list[ProcSpec]:
        if self.videos is None:
            return self.graph.decoders(frames, outbox, self._decoders())
        return self.graph.file_decoders(frames, outbox, self.videos)

    def outputs(self, plan: GraphPlan) -> OutputsFactory:
        return self.graph.outputs()

    def attach(self, supervisor: Supervisor) -> None:
        with self._cond:
            self._supervisor = supervisor
            draining = self._draining
        self.attached.set()
        if draining:  # drain() came while the graph was starting
            supervisor.drain()

    def on_event(self, event: Event) -> None:
        with self._cond:
            self.record.on_event(event)
            if isinstance(event, StreamDone):
                self._cond.notify_all()

    def close(self) -> None:
        self.graph.close()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def finish(self, interrupted: bool) -> None:
        """Nothing to write: the driver keeps the manifest and writes the job's summary."""

    def exit_code(self, interrupted: bool) -> int:
        return EXIT_INTERRUPTED if interrupted else EXIT_FAILED if self.report.failed else EXIT_OK

    def release(self) -> None:
        """Nothing claimed: the driver holds the output folder's lock."""

    # -- a warm worker's calls (any thread) ------------------------------------------------------
    def label(self, video: VideoInfo) -> None:
        """Put `video` on the running graph's queue; return once it is done or the graph has ended."""
        files = self.graph.files
        assert files is not None, "label() before the graph runs (wait for `attached`)"
        with self._cond:
            if self._ended:
                return
        try:
            files.put(video)
        except (ValueError, OSError):  # the graph has just ended and closed its queue
            return
        with self._cond:
            self._cond.wait_for(lambda: video.stream in self.report.done or self._ended)

    def drain(self) -> None:
        """End the open graph, now or as soon as it runs: what is under way is cut short (its
        outputs are not published)."""
        with self._cond:
            self._draining = True
            supervisor = self._supervisor
        if supervisor is not None:
            with contextlib.suppress(RuntimeError, OSError):  # its loop has ended already
                supervisor.call_soon_threadsafe(supervisor.drain)


def outcome(job: WorkerJob, video: VideoInfo, staging: Path, out: Path, host: str) -> VideoResult | None:
    """What the graph did with `video`, taken out of the job's report: its outputs moved from
    staging into OUT (a rename each) and its result; None if the graph did not finish it."""
    done = job.report.done.pop(video.stream, None)
    failed = job.report.failed.pop(video.path, "")
    job.report.warnings.pop(video.stream, None)
    if done is None:  # a video whose own problem (unreadable, corrupt...) ended the graph has `failed`
        return VideoResult(video.stream, host, error=failed) if failed else None
    if done.cut_short:
        return None  # drained or aborted: never published
    for name in output_names(video.stream, job.config.output):
        if (staging / name).exists():
            os.replace(staging / name, out / name)
    return VideoResult(video.stream, host, done.frames, round(done.seconds, 3), done.error or failed, done.summary.top)


def unreadable(video: VideoInfo, host: str) -> VideoResult | None:
    """A result for an input this host cannot read (else None): one line naming the host."""
    if os.access(video.path, os.R_OK):
        return None
    return VideoResult(video.stream, host, error=f"{printable(video.path)}: cannot read it on {host} "
                       "(inputs must be on storage every node sees at the same path)")


def staging_folder(out: Path) -> Path:
    """A new private staging folder inside OUT, named after this process (which a stack dump or a
    kill names) and a random part."""
    staging = out / STAGING / f"pid-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    staging.mkdir(parents=True)
    return staging


def label_videos(config: JobConfig, videos: list[VideoInfo], out_dir: str) -> list[VideoResult]:
    """Label `videos` into `out_dir` on this host, in one graph; a result per video, in order.
    A stage failure ends a graph: the videos it did not finish run again one per graph, so only
    the video that brings the failure about fails. See the module docstring."""
    host = worker_host()
    config = sized_for_the_task(config)
    results: dict[str, VideoResult] = {}
    readable = []
    for v in videos:
        if (bad := unreadable(v, host)) is not None:
            results[v.stream] = bad
        else:
            readable.append(v)
    groups = [readable] if readable else []
    while groups:
        group = groups.pop(0)
        unfinished = _label_group(config, group, Path(out_dir), host, results)
        if len(group) > 1:
            groups += [[v] for v, _problem in unfinished]
        else:
            results.update((v.stream, VideoResult(v.stream, host, error=problem)) for v, problem in unfinished)
    return [results[v.stream] for v in videos]


def _label_group(config: JobConfig, group: list[VideoInfo], out: Path, host: str,
                 results: dict[str, VideoResult]) -> list[tuple[VideoInfo, str]]:
    """One graph over `group`: each finished video's outputs move from staging into OUT and its
    result is recorded; returns the videos a stage failure left unfinished."""
    staging = staging_folder(out)
    try:
        job, problem = _run(config, group, staging)
        unfinished = []
        for video in group:
            result = outcome(job, video, staging, out, host)
            if result is None:
                unfinished.append((video, problem or "the video did not finish"))
            else:
                results[video.stream] = result
        return unfinished
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run(config: JobConfig, videos: list[VideoInfo], staging: Path) -> tuple[WorkerJob, str]:
    """The graph over `videos` with outputs into `staging`; the job, and a failure that ended it."""
    with card_for_task(config) as backend:
        job = WorkerJob(on_this_host(config, backend, staging), largest_frame_bytes(videos), videos)
        log_queue = setup_main_logging(logging.WARNING)
        try:
            run_job(job, log_queue, logging.WARNING)
            return job, ""
        except VidpipeError as exc:  # a stage failed: the videos done before it still count
            return job, one_line(exc)
        finally:
            shutdown_main_logging()


def on_this_host(config: JobConfig, backend: BackendSettings, staging: Path) -> JobConfig:
    """The driver's config as a worker's graph runs it: its card, outputs into its staging folder."""
    return replace(config, backend=backend, output=replace(config.output, dir=str(staging), progress=False))


def task_cpus(config: JobConfig) -> float:
    """The CPUs Ray gives a task (a video's, or a node's live graph): cluster.cpus_per_worker, or
    for cards the node's CPUs per card."""
    card = backend_spec(config.backend).card_resource
    if card is None:
        return config.cluster.cpus_per_worker
    resources = _node_resources()
    return resources.get("CPU", 1.0) / max(1.0, resources.get(card, 1.0))


def sized_for_the_task(config: JobConfig) -> JobConfig:
    """Processes for the CPUs Ray gives this task, not for the whole node (Ray sets no affinity).
    Settings made by hand stay."""
    whole = max(1, int(task_cpus(config)))
    if not config.preprocess.workers:
        config = replace_path(config, "preprocess.workers", whole)
    return replace_path(config, "runtime.max_open_sources", min(max_open_sources(config), default_open_sources(whole)))


@contextlib.contextmanager
def card_for_task(config: JobConfig) -> Iterator[BackendSettings]:
    """The backend settings for this task: for a backend on cards (alveo), the first card of this
    node that no other task of this node holds (a lock file each); otherwise unchanged."""
    backend = config.backend
    spec = backend_spec(backend)
    if spec.card_resource is None or spec.on_card is None:
        yield backend
        return
    node, cards = _node_cards(spec.card_resource)
    for index in range(cards):
        path = Path(tempfile.gettempdir()) / f"vidpipe-card-{node}-{index}.lock"
        with path.open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            yield spec.on_card(backend, index)
            return
    raise SourceError(f"no free card on {worker_host()} ({cards} {spec.card_resource!r} resources)")


def worker_host() -> str:
    """The host name, the Ray node (several nodes may share a host) and this worker's pid."""
    import ray

    return f"{socket.gethostname()} (node {ray.get_runtime_context().get_node_id()[:8]}, pid {os.getpid()})"


def _node_cards(resource: str) -> tuple[str, int]:
    import ray

    node = ray.get_runtime_context().get_node_id()
    return node[:12], int(_node_resources().get(resource, 0))


def _node_resources() -> dict[str, float]:
    import ray

    node = ray.get_runtime_context().get_node_id()
    return next((n["Resources"] for n in ray.nodes() if n["NodeID"] == node), {})

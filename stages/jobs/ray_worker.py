"""The work of one video on a Ray worker: vidpipe's own multiprocess graph, on the worker's host.

    label_videos(config, videos, out_dir) -> [VideoResult]    (a Ray task; see stages.jobs.ray_driver)

A task is one video, or several short ones in one graph (its start-up paid once). Outputs are
written into a private staging folder, OUT/.vidpipe-staging/<attempt>/, and each video's are
moved into OUT (os.replace: atomic, same filesystem) only once that video is complete. A worker or a
node lost mid-video leaves only its staging folder (the driver removes them); the attempt Ray
runs again elsewhere writes its own. So OUT only ever holds complete outputs, each published once
per successful attempt, with the same content as a one-host run.

Cards: a host started with `ray start --resources '{"alveo": N}'` runs at most N such tasks at
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
from vidpipe.pipeline.supervisor import ProcSpec
from vidpipe.stages.config import JobConfig, default_open_sources, max_open_sources
from vidpipe.stages.jobs.base import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, GraphPlan, GraphShape
from vidpipe.stages.jobs.graph import run_graph
from vidpipe.stages.jobs.label_graph import LabelGraph
from vidpipe.stages.jobs.label_record import LabelRecord
from vidpipe.stages.outputs.label import output_names
from vidpipe.stages.sink import OutputsFactory
from vidpipe.stages.sources.files import VideoInfo

log = logging.getLogger(__name__)

STAGING = ".vidpipe-staging"  # inside OUT: on the same filesystem, so publishing is a rename


@dataclass(frozen=True)
class VideoResult:
    stream: str
    host: str
    frames: int = 0
    seconds: float = 0.0
    error: str = ""  # one line, naming the host where it matters
    top: tuple[tuple[str, float], ...] = ()


class _TheseVideos:
    """Exactly the videos it is given, through the label job's graph (LabelGraph) and record
    (LabelRecord) without its planning or manifest: the driver plans and keeps the manifest."""

    def __init__(self, config: JobConfig, videos: list[VideoInfo]) -> None:
        self.config = config
        self.infos = videos
        self.graph = LabelGraph(config)
        self.record = LabelRecord(config)
        self.record.inputs = {v.stream: v.path for v in videos}  # their half-written outputs are removed
        self.report = self.record.report

    def prepare(self) -> GraphShape:
        return self.graph.shape(max(v.width * v.height * 3 for v in self.infos), len(self.infos))

    def sources(self, frames: SlotRing, outbox: Channel) -> list[ProcSpec]:
        return self.graph.file_decoders(frames, outbox, self.infos)

    def outputs(self, plan: GraphPlan) -> OutputsFactory:
        return self.graph.outputs()

    def on_event(self, event: Event) -> None:
        self.record.on_event(event)

    def close(self) -> None:
        self.graph.close()  # its decode workers' queue: this worker process lives on
        self.record.close()

    def finish(self, interrupted: bool) -> None:
        """Nothing: the driver writes the job's summary."""

    def exit_code(self, interrupted: bool) -> int:
        return EXIT_INTERRUPTED if interrupted else EXIT_FAILED if self.report.failed else EXIT_OK

    def release(self) -> None:
        """Nothing claimed: the staging folder is the task's."""


def label_videos(config: JobConfig, videos: list[VideoInfo], out_dir: str) -> list[VideoResult]:
    """Label `videos` into `out_dir` on this host, in one graph; a result per video, in order.
    A stage failure ends a graph: the videos it did not finish run again one per graph, so only
    the video that brings the failure about fails. See the module docstring."""
    host = _host()
    config = sized_for_the_task(config)
    results: dict[str, VideoResult] = {}
    readable = []
    for v in videos:
        if os.access(v.path, os.R_OK):
            readable.append(v)
        else:
            results[v.stream] = VideoResult(v.stream, host, error=f"{printable(v.path)}: cannot read it on {host} "
                                            "(inputs must be on storage every node sees at the same path)")
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
    """One graph over `group`: each finished video's outputs move from staging into OUT (a rename
    each) and its result is recorded; returns the videos a stage failure left unfinished."""
    staging = out / STAGING / uuid.uuid4().hex
    staging.mkdir(parents=True)
    try:
        job, problem = _run(config, group, staging)
        unfinished = []
        for video in group:
            done = job.report.done.get(video.stream)
            failed = job.report.failed.get(video.path, "")
            if done is None and not failed:
                unfinished.append((video, problem or "the video did not finish"))
            elif done is None:  # the video's own problem (unreadable, corrupt...)
                results[video.stream] = VideoResult(video.stream, host, error=failed)
            else:
                for name in output_names(video.stream, job.config.output):
                    if (staging / name).exists():
                        os.replace(staging / name, out / name)
                results[video.stream] = VideoResult(video.stream, host, done.frames, round(done.seconds, 3),
                                                    done.error or failed, done.summary.top)
        return unfinished
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run(config: JobConfig, videos: list[VideoInfo], staging: Path) -> tuple[_TheseVideos, str]:
    """The graph over `videos` with outputs into `staging`; the job, and a failure that ended it."""
    with card_for_task(config) as backend:
        local = replace(config, backend=backend, output=replace(config.output, dir=str(staging), progress=False))
        job = _TheseVideos(local, videos)
        log_queue = setup_main_logging(logging.WARNING)
        try:
            run_graph(job, job.prepare(), log_queue, logging.WARNING)
            return job, ""
        except VidpipeError as exc:  # a stage failed: the videos done before it still count
            return job, one_line(exc)
        finally:
            job.close()
            shutdown_main_logging()


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
    raise SourceError(f"no free card on {_host()} ({cards} {spec.card_resource!r} resources)")


def _host() -> str:
    """The host name, and the Ray node (several nodes may share a host)."""
    import ray

    return f"{socket.gethostname()} (node {ray.get_runtime_context().get_node_id()[:8]})"


def _node_cards(resource: str) -> tuple[str, int]:
    import ray

    node = ray.get_runtime_context().get_node_id()
    return node[:12], int(_node_resources().get(resource, 0))


def _node_resources() -> dict[str, float]:
    import ray

    node = ray.get_runtime_context().get_node_id()
    return next((n["Resources"] for n in ray.nodes() if n["NodeID"] == node), {})

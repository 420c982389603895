"""The work of one video on a Ray worker: vidpipe's own multiprocess graph, on the worker's host.

    label_video(config, video, out_dir) -> VideoResult      (a Ray task; see stages.jobs.ray_driver)

Outputs are written into a private staging folder, OUT/.vidpipe-staging/<attempt>/, and moved
into OUT (os.replace: atomic, same filesystem) only once the video is complete. A worker or a
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

from hw.settings import BackendSettings
from pipeline.errors import SourceError
from pipeline.logs import setup_main_logging, shutdown_main_logging
from pipeline.redact import printable
from stages.config import JobConfig
from stages.jobs.base import GraphShape
from stages.jobs.graph import run_graph
from stages.jobs.label import LabelJob, label_encoders
from stages.outputs.encoder import EncodeStage
from stages.sources.files import VideoInfo

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


class _OneVideo(LabelJob):
    """A LabelJob for exactly the video it is given: no planning, no manifest (the driver keeps it)."""

    def __init__(self, config: JobConfig, video: VideoInfo) -> None:
        super().__init__(config)
        self.infos = [video]

    def prepare(self) -> GraphShape:
        video, runtime = self.infos[0], self.config.runtime
        self.encoders = label_encoders(self.config, 1)
        return GraphShape(video.width * video.height * 3, runtime.queue_size, 1, encoders=self.encoders,
                          encoder=EncodeStage)


def label_video(config: JobConfig, video: VideoInfo, out_dir: str) -> VideoResult:
    """Label `video` into `out_dir` on this host; see the module docstring."""
    host = _host()
    if not os.access(video.path, os.R_OK):
        return VideoResult(video.stream, host, error=f"{printable(video.path)}: cannot read it on {host} "
                                                     "(inputs must be on storage every node sees at the same path)")
    staging = Path(out_dir) / STAGING / uuid.uuid4().hex
    staging.mkdir(parents=True)
    try:
        with _card(config) as backend:
            local = replace(config, backend=backend, output=replace(config.output, dir=str(staging), progress=False))
            job = _OneVideo(local, video)
            log_queue = setup_main_logging(logging.WARNING)
            try:
                run_graph(job, job.prepare(), log_queue, logging.WARNING)
            finally:
                shutdown_main_logging()
        done = job.report.done.get(video.stream)
        problem = next(iter(job.report.failed.values()), "")
        if done is None:
            return VideoResult(video.stream, host, error=problem or "the video did not finish")
        for name in sorted(os.listdir(staging)):  # complete: publish (a rename each)
            os.replace(staging / name, Path(out_dir) / name)
        return VideoResult(video.stream, host, done.frames, round(done.seconds, 3), done.error or problem,
                           done.summary.top)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _card(config: JobConfig) -> Iterator[BackendSettings]:
    """The backend settings for this task: for alveo, the first card of this node that no other
    task of this node holds (a lock file each); otherwise unchanged."""
    backend = config.backend
    if backend.name not in ("alveo", "alveo-emu"):
        yield backend
        return
    node, cards = _node_cards()
    for index in range(cards):
        path = Path(tempfile.gettempdir()) / f"vidpipe-card-{node}-{index}.lock"
        with path.open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            yield replace(backend, alveo=replace(backend.alveo, devices=(index,)))
            return
    raise SourceError(f"no free card on {_host()} ({cards} 'alveo' resources)")


def _host() -> str:
    """The host name, and the Ray node (several nodes may share a host)."""
    import ray

    return f"{socket.gethostname()} (node {ray.get_runtime_context().get_node_id()[:8]})"


def _node_cards() -> tuple[str, int]:
    import ray

    node = ray.get_runtime_context().get_node_id()
    resources: dict[str, float] = next((n["Resources"] for n in ray.nodes() if n["NodeID"] == node), {})
    return node[:12], int(resources.get("alveo", 0))

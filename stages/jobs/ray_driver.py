"""`vidpipe label INPUTS --out OUT --ray ADDRESS`: label across the hosts of a Ray cluster.

    driver (this process)                       Ray workers, one per card or per cpus_per_worker
    plan: names, manifest, resume  ------------> a warm worker each (stages.jobs.ray_actor): vidpipe's
    (as a local job: stages.jobs.inputs)          own graph on that host, kept open for the videos
                                    --video-->    the driver sends (stages.jobs.ray_feed)
    record each result in the manifest <-------- VideoResult (frames, time, host, error)
    summary, report, exit code

By default each worker slot is a long-lived Ray actor whose graph starts once (about 2 s) and then
takes videos as they come, a few queued at a time (stages.jobs.ray_feed). With
`cluster.warm_workers: false` (the fallback) videos go out as Ray tasks instead, each starting a
graph: a task is one video, or several short ones (`group_videos`) up to `cluster.task_frames`
frames, as long as every worker slot still gets TASKS_PER_SLOT tasks. Videos are sent longest
first. The driver alone writes the job manifest; workers publish complete outputs into OUT
(shared storage, the same path on every node). A worker or a node lost mid-video is a system
failure: its videos run again elsewhere (`cluster.max_retries`) and write the same outputs, so
they stay exactly once. Ray is an optional dependency (`pip install 'vidpipe[ray]'`): a local job
never imports it.
"""

from __future__ import annotations

import logging
import shutil
import socket
from pathlib import Path
from typing import Any

from vidpipe.hw.registry import backend_spec
from vidpipe.pipeline.errors import ConfigError, VidpipeError, one_line
from vidpipe.pipeline.redact import mask_url, printable
from vidpipe.stages.events import OutputSummary, Progress, SourceProblem, StreamDone
from vidpipe.stages.jobs.base import FilesJob, NothingToDo
from vidpipe.stages.jobs.ray_feed import WarmWorkers, ray_error, ray_resources
from vidpipe.stages.jobs.ray_worker import STAGING, VideoResult, label_videos
from vidpipe.stages.sources.files import VideoInfo, decode_size

log = logging.getLogger(__name__)

TASKS_PER_SLOT = 4  # grouping stops short of leaving a worker slot idle: at least this many tasks each


def run_on_ray(job: FilesJob, address: str) -> int:
    """Plan locally, label on the cluster at `address`, summarize locally; the exit code. The
    output folder stays locked by this driver from planning to the summary: the workers' staging
    folders are inside it."""
    ray = _import_ray()
    try:
        return _plan_and_label(ray, job, address)
    finally:
        job.release()


def _plan_and_label(ray: Any, job: FilesJob, address: str) -> int:
    try:
        job.prepare()
    except NothingToDo as done:
        log.info("%s", done)
        job.close()
        job.finish(False)
        return job.exit_code(False)
    _connect(ray, address)
    try:
        resources = _resources(ray, job)
        if job.config.cluster.warm_workers:
            warm = WarmWorkers(ray, job.config, job.infos, resources, lambda v, r: _record(job, v, r))
            interrupted = warm.run(_slots(ray, resources))
        else:
            interrupted = _label_all(ray, job, resources)
    finally:
        job.close()
        ray.shutdown()
        shutil.rmtree(Path(job.config.output.dir) / STAGING, ignore_errors=True)
    job.finish(interrupted)
    return job.exit_code(interrupted)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("cluster.ray_address: the Ray job needs Ray: pip install 'vidpipe[ray]'",
                          key="cluster.ray_address") from None
    return ray


def _connect(ray: Any, address: str) -> None:
    _reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except Exception as exc:  # ConnectionError, ValueError, RuntimeError...: Ray says which
        raise ConfigError(f"cluster.ray_address: cannot join the Ray cluster at {mask_url(address)}: "
                          f"{one_line(exc)}", key="cluster.ray_address") from None
    log.info("joined the Ray cluster at %s: %d nodes", mask_url(address), len([n for n in ray.nodes() if n["Alive"]]))


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """host:port and ray://host:port are tried first: Ray itself retries an unreachable address
    for a minute or more before it says so."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return  # `auto` (a local cluster) fails fast by itself; anything else is Ray's to parse
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(f"cluster.ray_address: cannot join the Ray cluster at {mask_url(address)}: "
                          f"{host}:{port} is not reachable ({exc.strerror or type(exc).__name__})",
                          key="cluster.ray_address") from None


def _resources(ray: Any, job: FilesJob) -> dict[str, float]:
    """What one video's worker takes, checked against the cluster: one line if no node has it."""
    config = job.config
    card = backend_spec(config.backend).card_resource
    wanted = {card: 1.0} if card is not None else {"CPU": config.cluster.cpus_per_worker}
    nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
    if not any(all(r.get(k, 0) >= v for k, v in wanted.items()) for r in nodes):
        have = ", ".join(sorted({f"{k}={v:g}" for r in nodes for k, v in r.items() if k in ("CPU", card)}))
        hint = f"start hosts with ray start --resources '{{\"{card}\": N}}' for cards" if card else \
            "lower cluster.cpus_per_worker"
        raise VidpipeError(f"the Ray cluster has no node with {wanted} for backend {config.backend.name} "
                           f"(nodes have: {have or 'nothing'}); {hint}")
    return wanted


def group_videos(videos: list[VideoInfo], task_frames: int, slots: int) -> list[list[VideoInfo]]:
    """The tasks: videos longest first; short ones share a task while it stays within
    min(task_frames, all frames / (TASKS_PER_SLOT x slots)) frames, so every slot still gets
    TASKS_PER_SLOT tasks; a longer video, or one of unknown length, runs alone; 0: one each."""
    ordered = sorted(videos, key=decode_size, reverse=True)
    total = sum(v.frame_count for v in ordered)
    target = min(task_frames, total // max(1, TASKS_PER_SLOT * slots))
    tasks: list[list[VideoInfo]] = []
    frames = target + 1  # the first video opens a task
    for video in ordered:
        unknown = video.frame_count <= 0  # some containers do not say: never grouped
        if unknown or frames + video.frame_count > target:
            tasks.append([])
            frames = 0
        tasks[-1].append(video)
        frames += target + 1 if unknown else video.frame_count
    return tasks


def _slots(ray: Any, resources: dict[str, float]) -> int:
    """Tasks the alive nodes run at once (cards, or CPUs / cpus_per_worker)."""
    nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
    return sum(min(int(r.get(k, 0) // v) for k, v in resources.items()) for r in nodes)


def _label_all(ray: Any, job: FilesJob, resources: dict[str, float]) -> bool:
    """The fallback: submit every task, longest first; record results as they come. True if interrupted."""
    config = job.config
    task = ray.remote(label_videos).options(**ray_resources(resources), max_retries=config.cluster.max_retries,
                                            retry_exceptions=False)
    groups = group_videos(job.infos, config.cluster.task_frames, _slots(ray, resources))
    log.info("%d videos in %d Ray tasks", len(job.infos), len(groups))
    pending = {task.remote(config, group, config.output.dir): group for group in groups}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                group = pending.pop(ref)
                for video, result in zip(group, _results(ray, ref, group), strict=True):
                    _record(job, video, result)
    except KeyboardInterrupt:
        log.warning("interrupted: cancelling %d videos (their outputs are not published)",
                    sum(len(g) for g in pending.values()))
        for ref in pending:
            ray.cancel(ref, force=True)
        return True
    return False


def _results(ray: Any, ref: Any, group: list[VideoInfo]) -> list[VideoResult]:
    try:
        results: list[VideoResult] = ray.get(ref)
        return results
    except Exception as exc:  # retries exhausted (node lost every time) or a bug on the worker
        return [VideoResult(v.stream, "?", error=f"{printable(v.path)}: failed on the cluster: {ray_error(exc)}")
                for v in group]


def _record(job: FilesJob, video: VideoInfo, result: VideoResult) -> None:
    """A video's result as the job's events, as its graph would have sent them on one host: its
    progress, its problem (one line), its StreamDone with the host that labeled it."""
    job.on_event(Progress(result.stream, result.frames, max(video.frame_count, result.frames), 0.0))
    log.debug("%s: %s on %s (%d frames)", result.stream, result.error or "ok", result.host, result.frames)
    if result.error:
        job.on_event(SourceProblem(result.stream, video.path, result.error))
    job.on_event(StreamDone(result.stream, video.path, result.frames, 0, result.seconds, result.error,
                            OutputSummary(result.top), result.host))

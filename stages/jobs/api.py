"""The Python API behind `import vidpipe` (vidpipe/__init__.py re-exports it). The CLI calls the
same functions, so a job started from Python and from the shell runs the same code.

    run = vidpipe.label("clips/", out="results", backend="cpu")   # LabelRun, already running
    for r in run: print(r.video, r.frame, r.label)                   # FrameResult as produced
    print(run.summary().to_pandas())                                 # JobSummary at the end

    with vidpipe.watch("incoming/", "results", on_result=print) as w:  # WatchRun
        w.join(3600)
    with vidpipe.live(["0"], on_event=print) as cam:                  # LiveRun: add_stream()...
        cam.join()
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vidpipe.hw.registry import backend_problems, missing_model
from vidpipe.pipeline.config import ConfigErrors
from vidpipe.pipeline.errors import BackendError, ConfigError
from vidpipe.stages.config import JobConfig, load_job, override, validate, with_job_defaults
from vidpipe.stages.events import FrameResult
from vidpipe.stages.jobs.graph import run_job
from vidpipe.stages.jobs.label import LabelJob
from vidpipe.stages.jobs.label_run import LabelRun
from vidpipe.stages.jobs.live_run import LiveRayRun, LiveRun, WatchRun
from vidpipe.stages.outputs.frame_outputs import check_outputs
from vidpipe.stages.outputs.senders import check_senders

PathLike = str | os.PathLike[str]
Inputs = PathLike | Sequence[PathLike]


def load_config(path: PathLike) -> JobConfig:
    """A YAML job config, every key checked (ConfigError naming the file and key); its paths are
    relative to its folder. Change it with `config.replace(backend={"name": "sim"}, ...)`."""
    return load_job(Path(path))


def label(inputs: Inputs, out: PathLike | None = None, *, backend: str | None = None,
          config: JobConfig | PathLike | None = None, resume: bool = False, ray: str | None = None,
          video: bool | None = None, progress: bool = False, log_level: int = logging.WARNING,
          **overrides: Any) -> LabelRun:
    """Label video files and folders; returns the running job (see LabelRun).

    `out`: the output folder (JSONL, segments, VTT, annotated mp4, manifest, report), as
    `vidpipe label --out`; None: results in memory only (no video is encoded, nothing is kept).
    `backend`: cpu (default), sim, alveo, alveo-emu or a plug-in's. `config`: a Config or a YAML
    file to start from; `overrides`: config sections, e.g. `preprocess={"resize": "center-crop"}`.
    `resume`: keep the videos an earlier run into `out` finished. `ray`: a Ray cluster address:
    the same job on every host (per-frame results then stay in the files; the summary comes back).
    Raises ConfigError / BackendError at once for a wrong setting or a missing model."""
    scratch = Path(tempfile.mkdtemp(prefix="vidpipe-")) if out is None else None
    output: dict[str, Any] = {"progress": progress, "report_frames": True, "dir": str(scratch or out)}
    if scratch is not None:
        output.update(video=False, jsonl=False)
    if video is not None:
        output["video"] = video
    try:
        cfg = settle(config, "label", _paths(inputs), overrides, backend, output, ray)
        job = LabelJob(cfg, resume=resume, table=False)
    except BaseException:
        if scratch is not None:
            scratch.rmdir()
        raise
    return LabelRun(job, runner(cfg, job), log_level, scratch).start()


def watch(folder: PathLike, out: PathLike, *, on_result: Callable[[FrameResult], None] | None = None,
          on_event: Callable[[Any], None] | None = None, backend: str | None = None,
          config: JobConfig | PathLike | None = None, log_level: int = logging.WARNING,
          **overrides: Any) -> WatchRun:
    """Label files as they arrive in `folder` (exactly once, across restarts) until stop(); not
    started: call start(), or use it as a context manager. Callbacks run on a thread of this
    process; a slow one never holds the job up (what does not fit its queue is dropped, counted)."""
    output = {"dir": str(out), "progress": False, "report_frames": on_result is not None}
    cfg = settle(config, "watch", (str(folder),), overrides, backend, output, None)
    from vidpipe.stages.jobs.watch import WatchJob

    return WatchRun(WatchJob(cfg), run_job, log_level, on_result, on_event)


Source = PathLike | int | Mapping[str, Any]


def live(sources: Sequence[Source] | Source = (), *, out: PathLike | None = None,
         on_result: Callable[[FrameResult], None] | None = None, on_event: Callable[[Any], None] | None = None,
         backend: str | None = None, config: JobConfig | PathLike | None = None, http: bool = False,
         ray: str | None = None, log_level: int = logging.WARNING, **overrides: Any) -> LiveRun:
    """Classify live sources (camera index, /dev/videoN, rtsp://, http://, files, folders; or a
    mapping of live.sources settings, e.g. {"uri": "clip.mp4", "name": "door", "loop": True}); not
    started: call start(), or use it as a context manager. `on_result` gets every labeled frame,
    `on_event` every label event (stages.outputs.events: a label change, a clip...), on a thread of
    this process. `http`: also serve the live page and REST API (live.http_port). Streams come and
    go with add_stream() / remove_stream(). `ray`: a Ray cluster address: the streams run on its
    nodes (as `vidpipe live --ray`), this process is their front; `on_event` still gets every label
    event, while per-frame results stay in the nodes' files (`on_result` is refused)."""
    items = [sources] if isinstance(sources, str | int | os.PathLike | Mapping) else list(sources)
    live_changes: dict[str, Any] = {"http": http, "report_frames": on_result is not None,
                                    "report_events": on_event is not None}
    if items:  # else the config's live.sources
        live_changes["sources"] = [dict(s) if isinstance(s, Mapping) else {"uri": str(s) if isinstance(s, int)
                                   else os.fspath(s)} for s in items]
    changes = {**overrides, "live": {**overrides.get("live", {}), **live_changes}}
    output = {"dir": str(out)} if out is not None else {}
    if ray is not None and on_result is not None:
        raise ConfigError("on_result: per-frame results stay on the nodes with ray= (their JSONL files in out); "
                          "use on_event", key="on_result")
    cfg = settle(config, "live", (), changes, backend, output, ray)
    if ray is not None:
        return LiveRayRun(cfg, log_level, on_event)
    from vidpipe.stages.jobs.live import LiveJob

    return LiveRun(LiveJob(cfg), run_job, log_level, on_result, on_event)


def settle(config: JobConfig | PathLike | None, job: str, inputs: tuple[str, ...], overrides: Mapping[str, Any],
           backend: str | None, output: Mapping[str, Any], ray: str | None) -> JobConfig:
    """The job's config: the file or Config given (else the defaults), the arguments on top,
    every check made (ConfigError), the model it needs present (BackendError)."""
    base = load_config(config) if isinstance(config, str | os.PathLike) else config or JobConfig()
    changes: dict[str, Any] = {**overrides, "job": job}
    if inputs:
        changes["inputs"] = inputs
    changes["output"] = {**overrides.get("output", {}), **output}
    if backend is not None:
        changes["backend"] = {**overrides.get("backend", {}), "name": backend}
    if ray is not None:
        changes["cluster"] = {**overrides.get("cluster", {}), "ray_address": ray}
    return settle_config(override(base, changes, "arguments"), "arguments")


def settle_config(config: JobConfig, source: str) -> JobConfig:
    """The one place a job's config is settled, before anything runs (the CLI and the API alike):
    every check (its keys and their ranges, live ones included, the outputs and senders it names,
    the model its backend needs, the files it is configured with), then the settings left at auto
    chosen for the job and this machine (with_job_defaults). Jobs take the config as it returns."""
    validate(config, source)
    check_outputs(config.output, source)
    check_senders(config.live, source)
    check_model(config)
    problems = backend_problems(config.backend)
    if problems:
        raise ConfigErrors([ConfigError(f"{source}: {p}", source=source) for p in problems])
    return with_job_defaults(config)


def check_model(config: JobConfig) -> None:
    """Before any process starts: a missing model is one line, not a failed stage."""
    missing = missing_model(config.backend)
    if missing is not None:
        raise BackendError(missing)


def runner(config: JobConfig, job: LabelJob) -> Callable[[Any, Any, int], int]:
    """Runs the job here, or on the Ray cluster of cluster.ray_address."""
    address = config.cluster.ray_address
    if not address:
        return run_job

    def on_ray(caller: Any, log_queue: Any, level: int) -> int:
        from vidpipe.stages.jobs.ray_driver import run_on_ray

        return run_on_ray(job, address)

    return on_ray


def _paths(inputs: Inputs) -> tuple[str, ...]:
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    return tuple(os.fspath(p) for p in items)

"""The job configuration: what `vidpipe run FILE.yaml` reads and CLI flags override.

Each key is documented once, in the docstring after its field (the live ones in
stages.live_settings, the backend's in hw.settings); the config reference in the docs,
`vidpipe init` and the example configs in configs/ are made from them. Relative paths written in
a config file are relative to the file's folder (see resolve_paths), so `vidpipe run
/somewhere/job.yaml` works from any directory; paths on the command line stay relative to the
current directory. `auto` (or null) lets vidpipe choose a value for the job and the machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from vidpipe.hw.model_cache import is_model_name
from vidpipe.hw.registry import check_backend
from vidpipe.hw.settings import BackendSettings
from vidpipe.pipeline.config import Auto, ConfigErrors, from_mapping, key_error, load_yaml, replace_path
from vidpipe.pipeline.machine import usable_cores
from vidpipe.stages.live_settings import (
    ClipSettings,
    EventSettings,
    LiveSettings,
    RestartSettings,
    SourceSettings,
    live_checks,
)

__all__ = ["ClipSettings", "EventSettings", "JobConfig", "LiveSettings", "OutputSettings", "RestartSettings",
           "SourceSettings", "live_checks", "load_job", "validate"]

T = TypeVar("T")


@dataclass(frozen=True)
class OutputSettings:
    """Where the results go and which files are written."""

    dir: str = "results"
    """The output folder. Per input NAME: NAME.jsonl, NAME.segments.json/.csv, NAME.vtt, NAME.mp4;
    per job: summary.csv, summary.json, index.html, thumbs/, vidpipe-manifest.json."""
    jsonl: bool = True
    """NAME.jsonl: one line per frame (frame, t, top5 ids, names, scores, latency_ms)."""
    segments: bool = True
    """NAME.segments.json/.csv and NAME.vtt: runs of the same smoothed top-1 label, and a summary."""
    video: bool = True
    """NAME.mp4: the annotated H.264 video, same size, frame count and frame rate as the input."""
    video_preset: str = "veryfast"
    """libx264 preset (ultrafast ... veryslow): speed against file size."""
    video_crf: int = 23
    """libx264 quality: lower is better and bigger (0..51)."""
    video_threads: Auto = None
    """x264 threads per encoder process; auto: 1 while the encoders take half the cores, else more."""
    encoders: Auto = None
    """Encoder processes (overlay + H.264) beside the sink; auto: one per file open at once, at most
    one per core (every core when a file is long enough to be split, see video_chunk_frames)."""
    video_chunk_frames: int = 250
    """A video of at least two chunks of this many frames (whole GOPs, x264's 250 at most) is encoded
    by several encoder processes at once, a chunk each, and joined without re-encoding; 0: one
    encoder per video."""
    progress: bool = True
    """Progress lines per file on stderr (redrawn in place on a terminal)."""
    extra: tuple[str, ...] = ()
    """More per-video outputs by name, from plug-ins (entry points `vidpipe.outputs`), e.g. [frames-csv]."""
    report_frames: bool = False
    """Each frame's labels to the main process (the Python API's iteration sets it)."""


@dataclass(frozen=True)
class PreprocessSettings:
    """Frames to the accelerator's 224x224x3 int8 tensor."""

    workers: Auto = None
    """Preprocess processes; auto: one per core."""
    resize: Literal["full", "center-crop"] = "full"
    """full: the whole frame resized to 224x224, as ResNet50-PYNQ's host code; center-crop: the
    largest centred square first."""
    max_damaged_share: float = 0.5
    """A video with more of its frames decoded with errors (damaged pictures the decoder concealed)
    than this share fails; fewer: it is done, with a warning naming them (0..1)."""


@dataclass(frozen=True)
class PostprocessSettings:
    """Labels over time: smoothing, segments, the overlay."""

    smoothing_window: int = 15
    """Frames in the top-1 vote that smooths labels over time."""
    min_segment_s: float = 0.5
    """Label runs shorter than this merge into their neighbours."""
    overlay_top: int = 3
    """Labels drawn on each frame of the annotated video (1..5)."""


@dataclass(frozen=True)
class RuntimeSettings:
    """The process graph."""

    start_method: Literal["spawn", "fork", "forkserver"] = "spawn"
    """How stage processes start (multiprocessing)."""
    queue_size: int = 32
    """Descriptors per queue (every queue is bounded)."""
    frame_slots: Auto = None
    """Shared-memory frame slots; auto: sized from the batch, the workers and a 768 MiB budget."""
    max_open_sources: Auto = None
    """Files decoded (and encoded) at the same time, one process each; auto: max(2, cores / 2).
    These decode processes also share a long file's runs (split_min_frames)."""
    split_min_frames: int = 300
    """A long file is decoded by several decode processes at once, each on its own run of at least
    this many frames (frame numbers, timestamps and labels as with one), when fewer files are left
    than processes and no output reads the frames' pixels (no annotated video: there one encoder
    per file is the slower part); 0: one process per file."""
    drain_timeout_s: float = 30.0
    """After Ctrl-C, abort if draining takes longer."""
    stall_timeout_s: float = 60.0
    """A stage with no sign of life for this long is reported stuck."""
    manifest_interval_s: float = 1.0
    """Finished videos are recorded in the job manifest together, at most this often (and at the
    end): a crash loses at most this long of finished videos, which --resume labels again;
    0: a write per video (slow for many short files)."""


@dataclass(frozen=True)
class WatchSettings:
    """`vidpipe watch DIR`: files are labeled once they stop growing, exactly once across restarts."""

    poll_s: float = 1.0
    """How often the folder is scanned."""
    settle_s: float = 2.0
    """A file whose size and time have not changed for this long is complete."""
    max_width: int = 1920
    """Frame slots are sized before any file arrives: a larger video fails in one line."""
    max_height: int = 1080
    """See max_width."""


@dataclass(frozen=True)
class ClusterSettings:
    """Many hosts on a Ray cluster (`--ray`): label spreads videos over workers; live runs streams
    on the nodes, placed by capacity, and serves them from one front."""

    ray_address: str = ""
    """Empty: this host only; auto: the cluster `ray start` runs here; HOST:PORT or ray://HOST:PORT."""
    cpus_per_worker: float = 2.0
    """cpu and sim backends: the CPUs one video's graph, or one node's live graph, takes (a card
    backend: one card each)."""
    max_retries: int = 3
    """A video whose worker or node is lost runs again elsewhere, this often at most."""
    warm_workers: bool = True
    """Label: each worker is a long-lived Ray actor whose graph starts once and takes videos as they
    come; false: a Ray task per video, or per group of short ones (task_frames), each starting a
    graph (about 2 s)."""
    videos_queued: int = 2
    """Label, warm workers: videos a worker holds beyond those it decodes, so that it never waits
    for the next; more leave fewer for the other workers."""
    task_frames: int = 20_000
    """Label without warm workers: short videos share a Ray task (one graph start-up, about 2 s, per
    task) until it holds this many frames, never fewer than 4 tasks per worker slot; 0: one video
    per task."""
    failover_s: float = 10.0
    """Live: when a node or its live graph is lost, its streams run again on the nodes left within
    this long (the front gives a node up after a third of it without an answer)."""
    max_streams_per_node: Auto = None
    """Live: streams one node runs at most; auto: as many as its card and CPUs have room for."""
    preview_fps: float = 2.0
    """Live: each stream's annotated picture is sent to the front's page this often (a JPEG; 0: the
    figures only)."""


@dataclass(frozen=True)
class JobConfig:
    """A whole job, as a YAML config file holds it (every key optional)."""

    job: Literal["label", "live", "watch"] = "label"
    """label: files, lossless, in order; watch: a folder's files as they arrive; live: cameras and
    streams, bounded latency."""
    inputs: tuple[str, ...] = ()
    """Video files and folders (label: searched recursively for .mp4 .mkv .avi .mov ...); the
    folder (watch)."""
    output: OutputSettings = field(default_factory=OutputSettings)
    """Where the results go."""
    backend: BackendSettings = field(default_factory=BackendSettings)
    """What runs the classifier."""
    preprocess: PreprocessSettings = field(default_factory=PreprocessSettings)
    """Frames to tensors."""
    postprocess: PostprocessSettings = field(default_factory=PostprocessSettings)
    """Labels over time."""
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    """The process graph."""
    live: LiveSettings = field(default_factory=LiveSettings)
    """Live jobs."""
    watch: WatchSettings = field(default_factory=WatchSettings)
    """Watch jobs."""
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    """Ray."""

    def replace(self, **changes: Any) -> JobConfig:
        """A copy with `changes` made, each checked as a config file's would be (ConfigError):
        sections as mappings, `backend` also as a name: `config.replace(backend="sim",
        output={"dir": "out"}, live={"sources": [{"uri": "0"}]})`."""
        if isinstance(changes.get("backend"), str):
            changes["backend"] = {"name": changes["backend"]}
        job = override(self, changes, "replace()")
        validate(job, "replace()")
        return job


def override(base: T, changes: Mapping[str, Any], source: str) -> T:
    """`base` (a config dataclass) with `changes` (nested mappings, as in a config file) merged in,
    every key and type checked by from_mapping as when loading a file."""
    return from_mapping(type(base), _merge(asdict(base), changes), source)  # type: ignore[call-overload]


def _merge(data: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(data)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict) and key not in ("options", "extra"):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_job(path: Path) -> JobConfig:
    data = load_yaml(path)
    job = resolve_paths(from_mapping(JobConfig, data, source=str(path)), data, path.parent)
    validate(job, str(path))
    return job


# The config keys that hold file or folder paths (live.sources[].uri too, when it is a file or folder).
PATH_KEYS = ("inputs", "output.dir", "backend.cpu.model", "backend.alveo.xclbin", "backend.alveo.fc_weights",
             "backend.alveo.labels")
_NOT_A_PATH = re.compile(r"^(\d+|[A-Za-z][A-Za-z0-9+.-]*://.*)$")  # a camera index, a URL (rtsp://, http://...)


def resolve_paths(job: JobConfig, data: dict[str, Any], folder: Path) -> JobConfig:
    """Makes the relative paths that `data` (the config file's mapping) holds relative to
    `folder` (the file's folder). Keys the file does not set keep their defaults, which are
    relative to the current directory (output.dir: results); "" (the default) stays ""."""
    for key in PATH_KEYS:
        if _written(data, key):
            value = _get(job, key)
            if key == "backend.cpu.model" and is_model_name(value):
                continue  # a name in the model cache (`vidpipe model list`), not a path
            beside = tuple(_beside(v, folder) for v in value) if isinstance(value, tuple) else _beside(value, folder)
            job = replace_path(job, key, beside)
    if _written(data, "live.sources"):
        sources = tuple(s if _NOT_A_PATH.match(s.uri) else replace(s, uri=_beside(s.uri, folder))
                        for s in job.live.sources)
        job = replace_path(job, "live.sources", sources)
    return job


def _written(data: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _beside(path: str, folder: Path) -> str:
    if not path:
        return path
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(folder, path))


X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)
MAX_WORKERS_PER_CORE = 4  # more preprocess processes than this only adds start-up time and memory
MAX_BATCH = 1024  # the device buffers of one buffer set are allocated up front
# backend.max_batch auto (the default) is chosen by the job (with_job_defaults):
FILE_BATCH = 128  # label, watch: throughput; the U250 (sim model) does 1,954 fps at 128 (1,958 published at 100)
LIVE_BATCH = 4  # live: latency; infer lowers it further to fit live.stale_after_ms (stages.infer)


def default_open_sources(cores: int) -> int:
    """Files decoded at once when runtime.max_open_sources is auto (see with_job_defaults)."""
    return max(2, cores // 2)


def with_job_defaults(job: JobConfig) -> JobConfig:
    """`job` with the settings that depend on its kind or the machine chosen where left at auto
    (explicit values win): backend.max_batch (batch_size) and runtime.max_open_sources
    (open_sources: a file's decoder and its encoder take about a core each at full speed, so more
    cores keep more files open)."""
    return replace(job, backend=replace(job.backend, max_batch=batch_size(job)),
                   runtime=replace(job.runtime, max_open_sources=max_open_sources(job)))


def validate(job: JobConfig, source: str) -> None:
    """Checks that span fields or need a range (types are checked while loading), the backend and
    its options: before any process starts, every problem at once, one line each naming the key."""
    check_backend(job.backend, source)
    problems = [key_error(source, key, message) for ok, key, message in _checks(job) if not ok]
    if problems:
        raise ConfigErrors(problems)


def _checks(job: JobConfig) -> list[tuple[bool, str, str]]:
    b, rt, out = job.backend, job.runtime, job.output
    most_workers = MAX_WORKERS_PER_CORE * usable_cores()
    return [
        (_auto_or(b.max_batch, 1, MAX_BATCH), "backend.max_batch", f"must be auto (by the job) or 1..{MAX_BATCH}"),
        (2 <= b.buffer_sets <= 8, "backend.buffer_sets", "must be 2..8 (2 = double buffering)"),
        (0 <= b.batch_timeout_ms <= 10_000, "backend.batch_timeout_ms", "must be 0..10000"),
        (len(b.alveo.devices) >= 1, "backend.alveo.devices", "needs at least one device"),
        (_auto_or(job.preprocess.workers, 1, most_workers), "preprocess.workers",
         f"must be auto (one per core) or 1..{most_workers} ({MAX_WORKERS_PER_CORE} per core on this machine)"),
        (1 <= rt.queue_size <= 4096, "runtime.queue_size", "must be 1..4096"),
        (_auto_or(rt.frame_slots, 2, 65536), "runtime.frame_slots", "must be auto or 2..65536"),
        (_auto_or(rt.max_open_sources, 1, 64), "runtime.max_open_sources", "must be auto (by the cores) or 1..64"),
        (0 <= rt.split_min_frames <= 10_000_000, "runtime.split_min_frames", "must be 0..10000000 (0: never)"),
        (rt.drain_timeout_s > 0, "runtime.drain_timeout_s", "must be > 0"),
        (rt.stall_timeout_s > 0, "runtime.stall_timeout_s", "must be > 0"),
        (0 <= rt.manifest_interval_s <= 3600, "runtime.manifest_interval_s", "must be 0..3600"),
        (0 <= job.preprocess.max_damaged_share <= 1, "preprocess.max_damaged_share", "must be 0..1"),
        (job.postprocess.smoothing_window >= 1, "postprocess.smoothing_window", "must be >= 1"),
        (job.postprocess.min_segment_s >= 0, "postprocess.min_segment_s", "must be >= 0"),
        (1 <= job.postprocess.overlay_top <= 5, "postprocess.overlay_top", "must be 1..5"),
        (out.video_preset in X264_PRESETS, "output.video_preset", f"must be one of {', '.join(X264_PRESETS)}"),
        (0 <= out.video_crf <= 51, "output.video_crf", "must be 0..51 (libx264)"),
        (_auto_or(out.video_threads, 1, 64), "output.video_threads", "must be auto (from the cores) or 1..64"),
        (_auto_or(out.encoders, 1, 64), "output.encoders", "must be auto (one per open file) or 1..64"),
        (0 <= out.video_chunk_frames <= 1_000_000, "output.video_chunk_frames", "must be 0..1000000 (0: no split)"),
        (bool(out.dir.strip()), "output.dir", "must not be empty"),
        (job.watch.poll_s > 0 and job.watch.settle_s >= 0, "watch.poll_s", "poll_s must be > 0, settle_s >= 0"),
        (64 <= job.watch.max_width <= 8192 and 64 <= job.watch.max_height <= 8192, "watch.max_width",
         "max_width and max_height must be 64..8192"),
        (0 < job.cluster.cpus_per_worker <= 1024, "cluster.cpus_per_worker", "must be > 0"),
        (0 <= job.cluster.max_retries <= 100, "cluster.max_retries", "must be 0..100"),
        (0 <= job.cluster.videos_queued <= 16, "cluster.videos_queued", "must be 0..16"),
        (0 <= job.cluster.task_frames <= 10_000_000, "cluster.task_frames",
         "must be 0..10000000 (0: a video per task)"),
        (3 <= job.cluster.failover_s <= 3600, "cluster.failover_s", "must be 3..3600 seconds"),
        (_auto_or(job.cluster.max_streams_per_node, 1, 256), "cluster.max_streams_per_node",
         "must be auto (by capacity) or 1..256"),
        (0 <= job.cluster.preview_fps <= 30, "cluster.preview_fps", "must be 0..30 (0: no pictures)"),
        *live_checks(job.live),
    ]


def _auto_or(value: int | None, low: int, high: int) -> bool:
    return value is None or low <= value <= high


def preprocess_workers(job: JobConfig) -> int:
    """preprocess.workers, or one per core (auto)."""
    return job.preprocess.workers or usable_cores()


def max_open_sources(job: JobConfig) -> int:
    """runtime.max_open_sources, or max(2, cores / 2) (auto)."""
    return job.runtime.max_open_sources or default_open_sources(usable_cores())


def batch_size(job: JobConfig) -> int:
    """backend.max_batch, or the job's (auto): FILE_BATCH for label and watch, LIVE_BATCH for live."""
    return job.backend.max_batch or (LIVE_BATCH if job.job == "live" else FILE_BATCH)

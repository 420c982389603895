"""The job configuration: what `vidpipe run FILE.yaml` reads and CLI flags override.

Every field is documented in configs/label-videos.yaml and configs/live-camera.yaml.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hw.settings import BACKENDS, BackendSettings
from pipeline.config import from_mapping, key_error, load_yaml


@dataclass(frozen=True)
class OutputSettings:
    dir: str = "results"
    jsonl: bool = True  # NAME.jsonl, one line per frame
    segments: bool = True  # NAME.segments.json and NAME.segments.csv
    video: bool = True  # NAME.mp4, annotated H.264
    video_preset: str = "veryfast"  # libx264 preset
    video_crf: int = 23
    progress: bool = True  # a progress bar per file on stderr


@dataclass(frozen=True)
class PreprocessSettings:
    workers: int = 0  # preprocess processes; 0 = number of cores
    resize: Literal["full", "center-crop"] = "full"  # full = the ResNet50-PYNQ host code


@dataclass(frozen=True)
class PostprocessSettings:
    smoothing_window: int = 15  # frames in the top-1 vote
    min_segment_s: float = 0.5  # shorter label runs merge into their neighbours
    overlay_top: int = 3  # labels drawn on the video


@dataclass(frozen=True)
class RuntimeSettings:
    start_method: Literal["spawn", "fork", "forkserver"] = "spawn"
    queue_size: int = 32  # descriptors per queue (bounded everywhere)
    frame_slots: int = 0  # shared-memory frame slots; 0 = sized from queues and batch
    max_open_sources: int = 2  # files decoded at the same time (one process each)
    drain_timeout_s: float = 30.0  # after Ctrl-C, abort if draining takes longer


@dataclass(frozen=True)
class SourceSettings:
    """One live source (job: live): what to open and how its capture thread behaves."""

    uri: str  # camera index, /dev/videoN, rtsp://..., http(s)://..., image folder, file
    name: str = ""  # stream id; default derived from the uri
    realtime: bool = True  # files: play at their frame rate, like a camera
    loop: bool = False  # files and image folders: start over at the end
    slideshow_fps: float = 1.0  # image folders: images per second
    stall_timeout_s: float = 5.0  # no frame for this long: stalled, reconnect
    open_timeout_s: float = 10.0  # network streams: FFmpeg's open timeout
    max_retries: int = 5  # failed opens in a row before a source that never streamed gives up
    retry_forever: bool = True  # once it has streamed, reconnect without limit
    backoff_initial_s: float = 0.5  # first delay between reconnect attempts (doubles each time)
    backoff_max_s: float = 30.0  # the delay's cap
    backoff_jitter: float = 0.5  # each delay is drawn from [d * (1 - jitter), d]
    fps_window_s: float = 2.0  # capture fps is measured over this window


@dataclass(frozen=True)
class LiveSettings:
    sources: tuple[SourceSettings, ...] = ()
    stale_after_ms: float = 200.0  # frames older than this are dropped before preprocessing
    max_width: int = 1920  # larger frames are scaled down to fit a shared-memory slot
    max_height: int = 1080
    http: bool = True  # live view page, MJPEG streams, /status.json, /metrics
    http_host: str = "127.0.0.1"  # 0.0.0.0 exposes it to the network
    http_port: int = 8080  # 0 = any free port (logged)
    display: bool = False  # cv2.imshow window (needs a screen)
    status_interval_s: float = 5.0  # one-line status in the log
    record: bool = False  # annotated recording per stream in output.dir
    jsonl: bool = True  # results per stream in output.dir


@dataclass(frozen=True)
class JobConfig:
    job: Literal["label", "live"] = "label"
    inputs: tuple[str, ...] = ()  # files and folders (job: label)
    output: OutputSettings = field(default_factory=OutputSettings)
    backend: BackendSettings = field(default_factory=BackendSettings)
    preprocess: PreprocessSettings = field(default_factory=PreprocessSettings)
    postprocess: PostprocessSettings = field(default_factory=PostprocessSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    live: LiveSettings = field(default_factory=LiveSettings)


def load_job(path: Path) -> JobConfig:
    job = from_mapping(JobConfig, load_yaml(path), source=str(path))
    validate(job, str(path))
    return job


def validate(job: JobConfig, source: str) -> None:
    """Checks that span fields or need a range (types are checked while loading)."""
    checks = [
        (
            job.backend.name in BACKENDS,
            "backend.name",
            f"unknown backend {job.backend.name!r} (valid: {', '.join(BACKENDS)})",
        ),
        (job.backend.max_batch >= 1, "backend.max_batch", "must be >= 1"),
        (job.backend.buffer_sets >= 2, "backend.buffer_sets", "must be >= 2 (double buffering)"),
        (job.backend.batch_timeout_ms >= 0, "backend.batch_timeout_ms", "must be >= 0"),
        (job.preprocess.workers >= 0, "preprocess.workers", "must be >= 0"),
        (job.runtime.queue_size >= 1, "runtime.queue_size", "must be >= 1"),
        (job.runtime.max_open_sources >= 1, "runtime.max_open_sources", "must be >= 1"),
        (job.postprocess.smoothing_window >= 1, "postprocess.smoothing_window", "must be >= 1"),
        (len(job.backend.alveo.devices) >= 1, "backend.alveo.devices", "needs at least one device index"),
    ]
    for ok, key, message in checks:
        if not ok:
            raise key_error(source, key, message)


def preprocess_workers(job: JobConfig) -> int:
    return job.preprocess.workers or os.cpu_count() or 1

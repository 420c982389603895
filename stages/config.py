"""The job configuration: what `vidpipe run FILE.yaml` reads and CLI flags override.

Every field is documented in configs/label-videos.yaml and configs/live-camera.yaml. Relative
paths written in a config file are relative to the file's folder (see resolve_paths), so
`vidpipe run /somewhere/job.yaml` works from any directory; paths on the command line stay
relative to the current directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from vidpipe.hw.registry import check_backend
from vidpipe.hw.settings import BackendSettings
from vidpipe.pipeline.config import from_mapping, key_error, load_yaml, replace_path
from vidpipe.pipeline.machine import usable_cores

T = TypeVar("T")


@dataclass(frozen=True)
class OutputSettings:
    dir: str = "results"
    jsonl: bool = True  # NAME.jsonl, one line per frame
    segments: bool = True  # NAME.segments.json and NAME.segments.csv
    video: bool = True  # NAME.mp4, annotated H.264
    video_preset: str = "veryfast"  # libx264 preset
    video_crf: int = 23
    video_threads: int = 0  # libx264 threads per encoder process; 0 = chosen from the cores (see README)
    encoders: int = 0  # encoder processes (overlay + H.264) beside the sink; 0 = one per open file, <= cores
    progress: bool = True  # a progress bar per file on stderr
    extra: tuple[str, ...] = ()  # more per-video outputs by name, from plug-ins (entry points vidpipe.outputs)
    report_frames: bool = False  # each frame's labels to the main process (the Python API sets it)


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
    max_open_sources: int = 0  # files decoded at the same time (one process each); 0 = max(2, cores // 2)
    drain_timeout_s: float = 30.0  # after Ctrl-C, abort if draining takes longer
    stall_timeout_s: float = 60.0  # a stage with no sign of life for this long is reported stuck


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
class EventSettings:
    """Label events out of a live run (stages.outputs.events): none of them slows the pipeline."""

    jsonl: bool = True  # OUTPUT/events.jsonl: label changes, clips (and results when results_hz > 0)
    webhook: str = ""  # URL: each event POSTed as JSON, retried with back-off
    mqtt: str = ""  # mqtt://[user:pass@]host[:port]/topic-prefix: events of stream S on PREFIX/S
    results_hz: float = 0.0  # also every result, at most this often per stream (0 = label changes only)
    smoothing_window: int = 5  # frames in the top-1 vote: a label change needs this many to win
    queue_size: int = 1000  # events waiting per receiver; when full, new events are dropped and counted
    retries: int = 3  # webhook: retries after the first attempt (back-off 0.5 s, doubling)
    timeout_s: float = 5.0  # webhook: request timeout; mqtt: keepalive is 6x this
    # more receivers by name, from plug-ins (entry points vidpipe.senders), each with its options:
    # {sqlite: {path: events.db}}
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClipSettings:
    """Event clips ("smart record"): H.264 around each run of a watched label (stages.outputs.clips)."""

    labels: tuple[str, ...] = ()  # class names that start a clip; empty = no clips
    pre_s: float = 3.0  # seconds before the label started (kept in a ring of small JPEGs)
    post_s: float = 5.0  # seconds after it ended
    max_s: float = 300.0  # a clip is closed at this length (the next one starts at once if the label goes on)
    fps: float = 10.0  # clips are written at this constant rate (frames repeated or skipped)
    jpeg_quality: int = 80  # of the ring's JPEGs: memory = pre_s x fps x JPEG size per stream


@dataclass(frozen=True)
class RestartSettings:
    """Crashed live stages (source, preprocess, infer) are restarted, as systemd's Restart=on-failure."""

    max_restarts: int = 5  # crashes of one process within window_s that are restarted; one more stops the job
    window_s: float = 60.0
    backoff_initial_s: float = 0.5  # delay before a restart, doubling with each crash in the window
    backoff_max_s: float = 10.0


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
    record_segment_s: float = 3600.0  # a new recording file after this long (0: one per run)
    record_keep_s: float = 0.0  # delete a stream's recordings older than this (604800: a week; 0: keep all)
    output_retry_s: float = 30.0  # a stream whose files could not be written (a full disk) retries this often
    jsonl: bool = True  # results per stream in output.dir
    api: bool = True  # /api/streams on the live view: add and remove streams while it runs
    api_token: str = ""  # bearer token for POST/DELETE; off 127.0.0.1 one is generated when empty
    max_streams: int = 16  # streams at once (configured + added)
    report_frames: bool = False  # each frame's labels to the main process (the Python API's on_result)
    report_events: bool = False  # each label event to the main process (the Python API's on_event)
    events: EventSettings = field(default_factory=EventSettings)
    clips: ClipSettings = field(default_factory=ClipSettings)
    restart: RestartSettings = field(default_factory=RestartSettings)


def live_checks(live: LiveSettings) -> list[tuple[bool, str, str]]:
    """(ok, key, message) for the live service's keys: API, events, clips, restarts."""
    ev, clips, r = live.events, live.clips, live.restart
    return [
        (1 <= live.max_streams <= 256, "live.max_streams", "must be 1..256"),
        (live.record_segment_s == 0 or live.record_segment_s >= 10, "live.record_segment_s",
         "must be 0 (one file per run) or >= 10 seconds"),
        (live.output_retry_s >= 1, "live.output_retry_s", "must be >= 1 second"),
        (live.record_keep_s == 0 or live.record_keep_s >= live.record_segment_s, "live.record_keep_s",
         "must be 0 (keep all) or at least live.record_segment_s"),
        (len(live.sources) <= live.max_streams, "live.sources", f"more than live.max_streams ({live.max_streams})"),
        (not ev.webhook or ev.webhook.startswith(("http://", "https://")), "live.events.webhook",
         "must be an http:// or https:// URL"),
        (ev.results_hz >= 0, "live.events.results_hz", "must be >= 0 (0 = label changes only)"),
        (ev.smoothing_window >= 1, "live.events.smoothing_window", "must be >= 1"),
        (1 <= ev.queue_size <= 1_000_000, "live.events.queue_size", "must be 1..1000000"),
        (0 <= ev.retries <= 20, "live.events.retries", "must be 0..20"),
        (ev.timeout_s > 0, "live.events.timeout_s", "must be > 0"),
        (clips.pre_s >= 0 and clips.post_s >= 0, "live.clips.pre_s", "pre_s and post_s must be >= 0"),
        (clips.max_s > 0, "live.clips.max_s", "must be > 0"),
        (0 < clips.fps <= 60, "live.clips.fps", "must be > 0 and <= 60"),
        (1 <= clips.jpeg_quality <= 100, "live.clips.jpeg_quality", "must be 1..100"),
        (r.max_restarts >= 0 and r.window_s > 0, "live.restart.max_restarts",
         "max_restarts must be >= 0 and window_s > 0"),
        (0 < r.backoff_initial_s <= r.backoff_max_s, "live.restart.backoff_initial_s",
         "must be > 0 and <= backoff_max_s"),
    ]


@dataclass(frozen=True)
class WatchSettings:
    """`vidpipe watch DIR`: files are labeled once they stop growing, exactly once across restarts."""

    poll_s: float = 1.0  # how often the folder is scanned
    settle_s: float = 2.0  # a file whose size and time have not changed for this long is complete
    max_width: int = 1920  # frame slots are sized before any file arrives: larger videos fail in one line
    max_height: int = 1080


@dataclass(frozen=True)
class ClusterSettings:
    """Many hosts (stages.jobs.ray_driver): videos are labeled by workers on a Ray cluster."""

    ray_address: str = ""  # "" = this host only; "auto" = the cluster `ray start` runs here; ray://host:port
    cpus_per_worker: float = 2.0  # cpu/sim backends: CPUs one video's graph takes (alveo: one "alveo" per card)
    max_retries: int = 3  # a video whose worker or node is lost runs again elsewhere, this often at most
    # short videos share a Ray task (one graph start-up, ~2 s, per task) until it holds this many frames;
    # never fewer than 4 tasks per worker slot while videos allow; 0: one video per task
    task_frames: int = 20_000


@dataclass(frozen=True)
class JobConfig:
    job: Literal["label", "live", "watch"] = "label"
    inputs: tuple[str, ...] = ()  # files and folders (job: label); the folder (job: watch)
    output: OutputSettings = field(default_factory=OutputSettings)
    backend: BackendSettings = field(default_factory=BackendSettings)
    preprocess: PreprocessSettings = field(default_factory=PreprocessSettings)
    postprocess: PostprocessSettings = field(default_factory=PostprocessSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    live: LiveSettings = field(default_factory=LiveSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

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
# backend.max_batch 0 (the default) is chosen by the job (with_job_defaults):
FILE_BATCH = 128  # label, watch: throughput; the U250 (sim model) does 1,954 fps at 128 (1,958 published at 100)
LIVE_BATCH = 4  # live: latency; infer lowers it further to fit live.stale_after_ms (stages.infer)


def default_open_sources(cores: int) -> int:
    """Files decoded at once when runtime.max_open_sources is 0 (see with_job_defaults)."""
    return max(2, cores // 2)


def with_job_defaults(job: JobConfig) -> JobConfig:
    """`job` with the settings that depend on its kind or the machine filled in where left at 0
    (explicit values win): backend.max_batch (FILE_BATCH for label and watch, LIVE_BATCH for
    live) and runtime.max_open_sources (max(2, cores // 2): a file's decoder and its encoder take
    about a core each at full speed, so more cores keep more files open)."""
    if not job.backend.max_batch:
        job = replace_path(job, "backend.max_batch", LIVE_BATCH if job.job == "live" else FILE_BATCH)
    if not job.runtime.max_open_sources:
        job = replace_path(job, "runtime.max_open_sources", default_open_sources(usable_cores()))
    return job


def validate(job: JobConfig, source: str) -> None:
    """Checks that span fields or need a range (types are checked while loading): before any
    process starts, one line naming the key."""
    check_backend(job.backend, source)
    for ok, key, message in _checks(job):
        if not ok:
            raise key_error(source, key, message)


def _checks(job: JobConfig) -> list[tuple[bool, str, str]]:
    b, rt, out, live = job.backend, job.runtime, job.output, job.live
    cores = usable_cores()
    most_workers = MAX_WORKERS_PER_CORE * cores
    return [
        (0 <= b.max_batch <= MAX_BATCH, "backend.max_batch", f"must be 0 (chosen by the job) or 1..{MAX_BATCH}"),
        (2 <= b.buffer_sets <= 8, "backend.buffer_sets", "must be 2..8 (2 = double buffering)"),
        (0 <= b.batch_timeout_ms <= 10_000, "backend.batch_timeout_ms", "must be 0..10000"),
        (len(b.alveo.devices) >= 1, "backend.alveo.devices", "needs at least one device"),
        (0 <= job.preprocess.workers <= most_workers, "preprocess.workers",
         f"must be 0..{most_workers} ({MAX_WORKERS_PER_CORE} per core on this machine; 0 = one per core)"),
        (1 <= rt.queue_size <= 4096, "runtime.queue_size", "must be 1..4096"),
        (rt.frame_slots == 0 or 2 <= rt.frame_slots <= 65536, "runtime.frame_slots", "must be 0 (auto) or 2..65536"),
        (0 <= rt.max_open_sources <= 64, "runtime.max_open_sources", "must be 0 (by the cores) or 1..64"),
        (rt.drain_timeout_s > 0, "runtime.drain_timeout_s", "must be > 0"),
        (rt.stall_timeout_s > 0, "runtime.stall_timeout_s", "must be > 0"),
        (job.postprocess.smoothing_window >= 1, "postprocess.smoothing_window", "must be >= 1"),
        (job.postprocess.min_segment_s >= 0, "postprocess.min_segment_s", "must be >= 0"),
        (1 <= job.postprocess.overlay_top <= 5, "postprocess.overlay_top", "must be 1..5"),
        (out.video_preset in X264_PRESETS, "output.video_preset", f"must be one of {', '.join(X264_PRESETS)}"),
        (0 <= out.video_crf <= 51, "output.video_crf", "must be 0..51 (libx264)"),
        (0 <= out.video_threads <= 64, "output.video_threads", "must be 0..64 (0 = chosen from the cores)"),
        (0 <= out.encoders <= 64, "output.encoders", "must be 0..64 (0 = one per open file, at most the cores)"),
        (bool(out.dir.strip()), "output.dir", "must not be empty"),
        (0 <= live.http_port <= 65535, "live.http_port", "must be 0..65535 (0 = any free port)"),
        (live.stale_after_ms > 0, "live.stale_after_ms", "must be > 0"),
        (64 <= live.max_width <= 8192 and 64 <= live.max_height <= 8192, "live.max_width",
         "max_width and max_height must be 64..8192"),
        (live.status_interval_s >= 0, "live.status_interval_s", "must be >= 0 (0 = off)"),
        (job.watch.poll_s > 0 and job.watch.settle_s >= 0, "watch.poll_s", "poll_s must be > 0, settle_s >= 0"),
        (0 < job.cluster.cpus_per_worker <= 1024, "cluster.cpus_per_worker", "must be > 0"),
        (0 <= job.cluster.max_retries <= 100, "cluster.max_retries", "must be 0..100"),
        (0 <= job.cluster.task_frames <= 10_000_000, "cluster.task_frames",
         "must be 0..10000000 (0: a video per task)"),
        (64 <= job.watch.max_width <= 8192 and 64 <= job.watch.max_height <= 8192, "watch.max_width",
         "max_width and max_height must be 64..8192"),
        *(check for i, src in enumerate(live.sources) for check in _source_checks(src, f"live.sources[{i}]")),
    ]


def _source_checks(src: SourceSettings, key: str) -> list[tuple[bool, str, str]]:
    return [
        (bool(src.uri.strip()), f"{key}.uri", "must not be empty"),
        (src.slideshow_fps > 0, f"{key}.slideshow_fps", "must be > 0"),
        (src.stall_timeout_s > 0 and src.open_timeout_s > 0, f"{key}.stall_timeout_s",
         "stall_timeout_s and open_timeout_s must be > 0"),
        (src.max_retries >= 0, f"{key}.max_retries", "must be >= 0"),
        (0 < src.backoff_initial_s <= src.backoff_max_s, f"{key}.backoff_initial_s",
         "must be > 0 and <= backoff_max_s"),
        (0 <= src.backoff_jitter <= 1, f"{key}.backoff_jitter", "must be 0..1"),
        (src.fps_window_s > 0, f"{key}.fps_window_s", "must be > 0"),
    ]


def preprocess_workers(job: JobConfig) -> int:
    return job.preprocess.workers or usable_cores()

"""The `live:` section of a job config (stages.config has the rest): sources, the live view and its
API, label events, clips, restarts. Each key is documented once, here, in the docstring after it;
the config reference (docs), `vidpipe init live` and configs/live-camera.yaml are made from these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidpipe.pipeline.config import AutoBool


@dataclass(frozen=True)
class SourceSettings:
    """One live source: what to open and how its capture thread behaves."""

    uri: str
    """Camera index (0), /dev/videoN, rtsp://user:pass@host/path, http(s)://.../video.mjpg, an image
    folder (a slideshow) or a video file."""
    name: str = ""
    """The stream's name in outputs, logs and the page; empty: derived from the uri."""
    realtime: bool = True
    """Files: play at their own frame rate, like a camera."""
    loop: bool = False
    """Files and image folders: start over at the end."""
    slideshow_fps: float = 1.0
    """Image folders: images per second."""
    stall_timeout_s: float = 5.0
    """No frame for this long: stalled, back off, reconnect."""
    open_timeout_s: float = 10.0
    """Network streams: give up an open after this long (FFmpeg's open timeout)."""
    max_retries: int = 5
    """Failed opens in a row before a source that never streamed gives up."""
    retry_forever: bool = True
    """A source that has streamed reconnects without limit (false: max_retries applies)."""
    backoff_initial_s: float = 0.5
    """First wait before reconnecting; doubles with each failed attempt, up to backoff_max_s."""
    backoff_max_s: float = 30.0
    """The longest wait between reconnect attempts."""
    backoff_jitter: float = 0.5
    """Each wait is drawn from [w * (1 - jitter), w]: cameras behind one switch spread out."""
    fps_window_s: float = 2.0
    """The capture fps shown is measured over this window."""


@dataclass(frozen=True)
class EventSettings:
    """Label events: {type: label, stream, label, score, previous, time, time_iso, stream_time_s,
    frame, run}, and clip events when a clip is written. No receiver ever slows the pipeline."""

    jsonl: bool = True
    """Write them to OUT/events.START.jsonl (segments as the streams' JSONL)."""
    webhook: str = ""
    """An http(s) URL: each event POSTed as JSON, retried with back-off."""
    mqtt: str = ""
    """mqtt://[user:pass@]host[:port]/topic-prefix: the events of stream S on PREFIX/S (QoS 1)."""
    results_hz: float = 0.0
    """Also send every result, at most this often per stream (0: label changes only)."""
    smoothing_window: int = 5
    """Frames in the top-1 vote: a new label must win it before it is an event."""
    queue_size: int = 1000
    """Events waiting per receiver; beyond, new ones are dropped and counted in /metrics."""
    retries: int = 3
    """Webhook: retries of a failed POST (0.5 s, 1 s, 2 s ... apart)."""
    timeout_s: float = 5.0
    """Webhook: request timeout; MQTT keepalive is 6x this."""
    extra: dict[str, Any] = field(default_factory=dict)
    """More receivers by name, from plug-ins (entry points `vidpipe.senders`), each with its options,
    e.g. {sqlite: {path: events.db}}."""


@dataclass(frozen=True)
class ClipSettings:
    """Event clips ("smart record"): H.264 around each run of a watched label, in OUT/clips/."""

    labels: tuple[str, ...] = ()
    """Class names that start a clip, e.g. [tabby, tiger cat]; empty: no clips."""
    pre_s: float = 3.0
    """Seconds kept from before the label started (a ring of small JPEGs per stream)."""
    post_s: float = 5.0
    """Seconds recorded after the label ended."""
    max_s: float = 300.0
    """A longer clip is closed (and a new one starts if the label goes on)."""
    fps: float = 10.0
    """Clips are written at this constant rate (memory: pre_s x fps JPEGs per stream)."""
    jpeg_quality: int = 80
    """Of the ring's JPEGs."""


@dataclass(frozen=True)
class RestartSettings:
    """A crashed source, preprocess or infer process is restarted (as systemd's Restart=on-failure);
    an infer restart opens the accelerator again."""

    max_restarts: int = 5
    """Crashes of one process within window_s that are restarted; one more stops the run."""
    window_s: float = 60.0
    """The window max_restarts counts crashes in."""
    backoff_initial_s: float = 0.5
    """Wait before a restart, doubling with each crash in the window, up to backoff_max_s."""
    backoff_max_s: float = 10.0
    """The longest wait before a restart."""


@dataclass(frozen=True)
class LiveSettings:
    """Live classification (job: live): cameras and streams, bounded latency."""

    sources: tuple[SourceSettings, ...] = ()
    """The streams to open at start (more can be added over the API)."""
    stale_after_ms: float = 200.0
    """Frames older than this are dropped before preprocessing (bounded latency), and counted."""
    max_width: int = 1920
    """Bigger frames are scaled down to fit a shared-memory slot."""
    max_height: int = 1080
    """See max_width."""
    http: bool = True
    """The live view: page, MJPEG per stream, /status.json, Prometheus /metrics."""
    http_host: str = "127.0.0.1"
    """0.0.0.0 makes it reachable from the network: think before you do."""
    http_port: int = 8080
    """0: any free port (the log says which)."""
    display: bool = False
    """A cv2.imshow window per stream (needs a screen)."""
    status_interval_s: float = 5.0
    """A one-line status in the log this often (0: off)."""
    record: bool = False
    """An annotated H.264 recording, OUT/STREAM.START.mp4 (START: UTC, 20261130T144700Z), at the
    source's own timing; fragmented MP4: plays while written and after a crash."""
    record_segment_s: float = 3600.0
    """A new recording file after this much stream time, a new JSONL segment after this much wall
    time (0: one file per run)."""
    record_keep_s: float = 0.0
    """Delete what a live run wrote (recordings, STREAM.START.jsonl segments, clips, snapshots,
    events.jsonl segments) once older than this (604800: a week; 0: keep all)."""
    max_disk_gb: float = 0.0
    """Also delete the oldest of those files while they take more than this (GB of 10^9 bytes; 0: no
    limit). Only files vidpipe made are ever deleted, never one being written."""
    output_retry_s: float = 30.0
    """A stream whose files cannot be written (a full disk) tries again this often."""
    jsonl: bool = True
    """Results to OUT/STREAM.START.jsonl, one line per frame with the run id, `time` and `time_iso`
    (capture wall clock); a new segment with each run and every record_segment_s, (run, frame) is the key."""
    api: bool = True
    """/api/streams on the live view: add (POST) and remove (DELETE) streams while it runs; the run
    then goes on until Ctrl-C even when no stream is left."""
    api_token: str = ""
    """A service token for scripts: 'Authorization: Bearer TOKEN' acts as an admin. Off loopback with
    none and with sign-in off, one is generated and logged."""
    auth: AutoBool = None
    """Sign-in (users, roles, a session cookie) on every page and endpoint; auto: on exactly when
    http_host is beyond 127.0.0.1."""
    users_file: str = ""
    """The users' file (vidpipe users add/passwd/list); empty: OUT/users.json."""
    session_hours: float = 12.0
    """A sign-in lasts this long."""
    metrics_public: bool = False
    """/metrics without a session (for a Prometheus that scrapes), even with sign-in on."""
    tls_cert: str = ""
    """A PEM certificate for https; empty and beyond 127.0.0.1: a self-signed one is made once in
    OUT/tls/ (its SHA-256 fingerprint logged)."""
    tls_key: str = ""
    """The PEM private key of tls_cert."""
    serve: bool = False
    """Run as a service that waits for streams added over the API, even when every configured source
    is gone (false: sources that can never open end the run with exit 1)."""
    max_streams: int = 16
    """Streams at once (configured + added); one more is refused."""
    report_frames: bool = False
    """Each frame's labels to the main process (the Python API's on_result)."""
    report_events: bool = False
    """Each label event to the main process (the Python API's on_event)."""
    events: EventSettings = field(default_factory=EventSettings)
    """Label events and where they go."""
    clips: ClipSettings = field(default_factory=ClipSettings)
    """Event clips."""
    restart: RestartSettings = field(default_factory=RestartSettings)
    """Restarts of crashed stages."""


def live_checks(live: LiveSettings) -> list[tuple[bool, str, str]]:
    """(ok, key, message) for the live keys that need a range or span fields."""
    ev, clips, r = live.events, live.clips, live.restart
    return [
        (1 <= live.max_streams <= 256, "live.max_streams", "must be 1..256"),
        (live.record_segment_s == 0 or live.record_segment_s >= 10, "live.record_segment_s",
         "must be 0 (one file per run) or >= 10 seconds"),
        (live.output_retry_s >= 1, "live.output_retry_s", "must be >= 1 second"),
        (live.record_keep_s == 0 or live.record_keep_s >= live.record_segment_s, "live.record_keep_s",
         "must be 0 (keep all) or at least live.record_segment_s"),
        (live.max_disk_gb >= 0, "live.max_disk_gb", "must be >= 0 (0 = no limit)"),
        (live.session_hours > 0, "live.session_hours", "must be > 0"),
        (bool(live.tls_cert) == bool(live.tls_key), "live.tls_cert", "tls_cert and tls_key go together"),
        (len(live.sources) <= live.max_streams, "live.sources", f"more than live.max_streams ({live.max_streams})"),
        (0 <= live.http_port <= 65535, "live.http_port", "must be 0..65535 (0 = any free port)"),
        (live.stale_after_ms > 0, "live.stale_after_ms", "must be > 0"),
        (64 <= live.max_width <= 8192 and 64 <= live.max_height <= 8192, "live.max_width",
         "max_width and max_height must be 64..8192"),
        (live.status_interval_s >= 0, "live.status_interval_s", "must be >= 0 (0 = off)"),
        (not ev.webhook or ev.webhook.startswith(("http://", "https://")), "live.events.webhook",
         "must be an http:// or https:// URL"),
        (not ev.mqtt or ev.mqtt.startswith("mqtt://"), "live.events.mqtt",
         "expected mqtt://host[:port]/topic-prefix"),
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
        *(check for i, src in enumerate(live.sources) for check in source_checks(src, f"live.sources[{i}]")),
    ]


def source_checks(src: SourceSettings, key: str) -> list[tuple[bool, str, str]]:
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

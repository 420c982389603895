"""Live view in a browser: MJPEG per stream, a status page, /status.json and /metrics.

    view = LiveView(port=8080, registry=metrics.registry).start()   # 127.0.0.1 unless told
    view.publish("cam1", annotated_bgr_frame, {"label": "tabby cat", "fps": 24.9, "state": "streaming",
                                               "latency_p50_ms": 41, "latency_p99_ms": 80})
    view.close()

This is what the page shows (streams, their newest frame and info); the routes are in
stages.web.app (Starlette), served by uvicorn in a thread (stages.web.server), behind the guard
(stages.web.guard: sign-in, roles) and over TLS when given `tls`. Stream names are URL-quoted in
paths and HTML-escaped in the page.

/status.json gives each stream's `health`: "live", "stale" (no new frame for `stale_after_s`, or 3
frame intervals when that is longer), "down" (its source is not streaming: stalled, backing off,
failed...), or "starting" (no frame yet), with `frame_age_s` (seconds since its last frame).

Each stream has its own Condition: publish() wakes only that stream's MJPEG clients, which block
between frames (no polling). publish() never waits for a client. May block: publish() only to
encode a frame given as an array; close() until the server has stopped (clients wake at once).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from prometheus_client import CollectorRegistry

from vidpipe.pipeline.errors import ConfigError
from vidpipe.stages.web.app import build_app
from vidpipe.stages.web.console import Console
from vidpipe.stages.web.guard import Guard
from vidpipe.stages.web.page import render
from vidpipe.stages.web.server import ThreadedServer

log = logging.getLogger(__name__)

KEEPALIVE_S = 5.0  # an idle stream re-sends its last frame this often, so dead clients are noticed
KEPT_WITHOUT_FRAME = ("label", "score")
STALE_AFTER_S = 2.0  # a stream whose newest frame is older than this (or 3 frame intervals) is stale


class _Stream:
    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)  # wakes this stream's MJPEG clients only
        self.jpeg = b""
        self.seq = 0  # frames published
        self.removed = False
        self.info: dict[str, Any] = {}
        self.t_updated = 0.0
        self.t_frame = 0.0  # when its newest frame came (0: none yet)

    def health(self, now: float, stale_after_s: float) -> tuple[str, float | None]:
        """("live" | "stale" | "down" | "starting", seconds since the newest frame or None)."""
        age = round(now - self.t_frame, 3) if self.t_frame else None
        state = self.info.get("state") or "streaming"
        if state != "streaming":
            return ("starting" if state == "connecting" and age is None else "down"), age
        fps = self.info.get("fps") or 0.0
        if age is None:
            return "starting", age
        return ("stale" if age > max(stale_after_s, 3.0 / fps if fps > 0 else 0.0) else "live"), age


class LiveView:
    """The HTTP server; see the module docstring. Thread-safe: publish() from any thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, registry: CollectorRegistry | None = None,
                 jpeg_quality: int = 80, title: str = "vidpipe live", api: Any = None,
                 status_extra: Callable[[], dict[str, Any]] | None = None,
                 stale_after_s: float = STALE_AFTER_S, guard: Guard | None = None,
                 tls: tuple[Path, Path] | None = None, console: Console | None = None) -> None:
        self.host, self.port = host, port
        self.console = console  # what the run recorded (its output folder); None: no console routes
        self.guard = guard or Guard(None)  # None: no sign-in, no token
        self.tls = tls
        self.api = api  # stages.web.api.StreamsApi (or anything with its handle()); None: no /api
        self.status_extra = status_extra  # more keys for /status.json (restarts, event counts)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.jpeg_quality = jpeg_quality
        self.title = title
        self.stale_after_s = stale_after_s
        self.closing = False
        self.lock = threading.Lock()  # guards `streams` and `closing`; each stream's Condition uses it
        self.streams: dict[str, _Stream] = {}
        self._server: ThreadedServer | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    def start(self) -> LiveView:
        self._server = ThreadedServer(build_app(self, self.guard), self.host, self.port, self.tls).start()
        self.port = self._server.port
        return self

    def publish(self, stream: str, image: bytes | np.ndarray | None, info: Mapping[str, Any] | None = None) -> None:
        """New frame (JPEG bytes or a BGR array; None keeps the last one) and/or info of `stream`."""
        jpeg = image if isinstance(image, bytes | None) else self._encode(image)
        with self.lock:
            s = self.streams.get(stream) or self.streams.setdefault(stream, _Stream(self.lock))
            if jpeg is not None:
                s.jpeg = jpeg
                s.seq += 1
                s.t_frame = time.time()
            if info is not None:  # an update without a frame (a source's state) keeps the last label
                kept = {k: s.info[k] for k in KEPT_WITHOUT_FRAME if k in s.info} if jpeg is None else {}
                s.info = {**kept, **info}
            s.t_updated = time.time()
            s.cond.notify_all()

    def status(self) -> dict[str, Any]:
        """What /status.json serves."""
        now = time.time()
        streams: dict[str, dict[str, Any]] = {}
        with self.lock:
            for name, s in self.streams.items():
                health, frame_age = s.health(now, self.stale_after_s)
                streams[name] = {**s.info, "frames_shown": s.seq, "age_s": round(now - s.t_updated, 3),
                                 "health": health, "frame_age_s": frame_age}
        return {"time": now, "streams": streams, **(self.status_extra() if self.status_extra else {})}

    def remove(self, stream: str) -> None:
        """Forget `stream` (removed at run time): its MJPEG clients end, the page drops it."""
        with self.lock:
            s = self.streams.pop(stream, None)
            if s is not None:
                s.removed = True
                s.cond.notify_all()

    def close(self) -> None:
        """Stops the server and wakes and joins every client thread."""
        with self.lock:
            self.closing = True
            for s in self.streams.values():
                s.cond.notify_all()
        if self._server is not None:
            self._server.close()
        self._server = None

    def __enter__(self) -> LiveView:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _encode(self, frame: np.ndarray) -> bytes:
        return encode_jpeg(frame, self.jpeg_quality)

    def next_frame(self, stream: str, last_seq: int) -> tuple[bytes, int] | None:
        """(jpeg, seq) once `stream` has a frame newer than `last_seq`, or the current one after
        KEEPALIVE_S (b"" before the first frame); None once closing or if the stream is unknown."""
        with self.lock:
            s = self.streams.get(stream)
            if s is None:
                return None
            s.cond.wait_for(lambda: self.closing or s.removed or s.seq > last_seq, KEEPALIVE_S)
            return None if self.closing or s.removed else (s.jpeg, s.seq)

    def snapshot(self, stream: str) -> bytes | None:
        """The newest JPEG (b"" before the first frame); None for an unknown stream."""
        with self.lock:
            s = self.streams.get(stream)
            return s.jpeg if s is not None else None

    def has_stream(self, stream: str) -> bool:
        with self.lock:
            return stream in self.streams

    def page(self) -> str:
        with self.lock:
            names = sorted(self.streams)
        return render(self.title, names)


def encode_jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a frame of shape {frame.shape} as JPEG")
    return buf.tobytes()


def check_port_free(host: str, port: int) -> None:
    """A ConfigError (one line naming live.http_port) if the live view could not listen there."""
    if port == 0:
        return  # any free port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"live.http_port: cannot listen on {host}:{port} ({exc.strerror}): pick another "
                              "--port, or --port 0 for any free port", key="live.http_port") from None

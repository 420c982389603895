"""Live view in a browser: MJPEG per stream, a status page, /status.json and /metrics.

    view = LiveView(port=8080, registry=metrics.registry).start()   # 127.0.0.1 unless told
    view.publish("cam1", annotated_bgr_frame, {"label": "tabby cat", "fps": 24.9, "state": "streaming",
                                               "latency_p50_ms": 41, "latency_p99_ms": 80})
    view.close()

Routes: `/` the page (stages.web.page: every stream with its label and score, a LIVE / STALE /
DOWN badge, fps and capture -> label latency, refreshed from /status.json every 500 ms; streams
appear and vanish as they come and go), `/stream/<name>.mjpg`
(multipart/x-mixed-replace), `/snapshot/<name>.jpg`, `/status.json`, `/metrics` (Prometheus text of
the given registry), and `/api/...` handed to `api` (stages.web.api) when one is given. Stream names
are URL-quoted in paths and HTML-escaped in the page.

/status.json gives each stream's `health`: "live", "stale" (no new frame for `stale_after_s`, or 3
frame intervals when that is longer), "down" (its source is not streaming: stalled, backing off,
failed...), or "starting" (no frame yet), with `frame_age_s` (seconds since its last frame).

Each stream has its own Condition: publish() wakes only that stream's MJPEG clients, which block
between frames (no polling). May block: publish() only to encode a frame given as an array;
close() until every client handler has returned (each wakes at once on close).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from vidpipe.pipeline.errors import ConfigError
from vidpipe.stages.web.page import render

log = logging.getLogger(__name__)

BOUNDARY = "vidpipe-frame"
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


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler: nothing outlives close()
    block_on_close = True
    view: LiveView


class LiveView:
    """The HTTP server; see the module docstring. Thread-safe: publish() from any thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, registry: CollectorRegistry | None = None,
                 jpeg_quality: int = 80, title: str = "vidpipe live", api: Any = None,
                 status_extra: Callable[[], dict[str, Any]] | None = None,
                 stale_after_s: float = STALE_AFTER_S) -> None:
        self.host, self.port = host, port
        self.api = api  # stages.web.api.StreamsApi (or anything with its handle()); None: no /api
        self.status_extra = status_extra  # more keys for /status.json (restarts, event counts)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.jpeg_quality = jpeg_quality
        self.title = title
        self.stale_after_s = stale_after_s
        self.closing = False
        self.lock = threading.Lock()  # guards `streams` and `closing`; each stream's Condition uses it
        self.streams: dict[str, _Stream] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> LiveView:
        server = _Server((self.host, self.port), _Handler)
        server.view = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="liveview-http")
        self._thread.start()
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
            self._server.shutdown()
            self._server.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join()
        self._server, self._thread = None, None

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


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10.0  # a client that stops reading frees its thread after this

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        view, path = self.server.view, unquote(urlsplit(self.path).path)
        try:
            if path in ("/", "/index.html"):
                self._reply(200, "text/html; charset=utf-8", view.page().encode())
            elif path == "/status.json":
                self._reply(200, "application/json", json.dumps(view.status()).encode())
            elif path == "/metrics":
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest(view.registry))
            elif path.startswith("/stream/") and path.endswith(".mjpg"):
                self._mjpeg(view, path[len("/stream/"):-len(".mjpg")])
            elif path.startswith("/snapshot/") and path.endswith(".jpg"):
                self._snapshot(view, path[len("/snapshot/"):-len(".jpg")])
            elif path.startswith("/api/"):
                self._api("GET")
            else:
                self._reply(404, "text/plain", b"not found\n")
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the browser went away (tab closed, reload): nothing to report

    def do_POST(self) -> None:
        self._api("POST")

    def do_DELETE(self) -> None:
        self._api("DELETE")

    def _api(self, method: str) -> None:
        api, path = self.server.view.api, unquote(urlsplit(self.path).path)
        if api is None or not path.startswith("/api/"):
            self._reply(404, "application/json", b'{"error": "not found"}')
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= 1 << 20:
            self._reply(400, "application/json", b'{"error": "bad Content-Length"}')
            return
        body = self.rfile.read(length) if length else b""
        try:
            code, data, headers = api.handle(method, path, self.headers.get("Authorization", ""), body)
        except Exception as exc:  # a bug must not take the server down: one line to the client, the log has it
            log.exception("%s %s failed", method, path)
            code, data, headers = 500, {"error": f"internal error: {type(exc).__name__}"}, {}
        self._reply(code, "application/json", json.dumps(data).encode(), headers)

    def _reply(self, code: int, ctype: str, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _snapshot(self, view: LiveView, name: str) -> None:
        with view.lock:
            s = view.streams.get(name)
            jpeg = s.jpeg if s is not None else None
        if jpeg is None:
            self._reply(404, "text/plain", b"no such stream\n")
        elif not jpeg:
            self._reply(503, "text/plain", b"no frame yet\n")
        else:
            self._reply(200, "image/jpeg", jpeg)

    def _mjpeg(self, view: LiveView, name: str) -> None:
        if not view.has_stream(name):
            self._reply(404, "text/plain", b"no such stream\n")
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        # Each part is followed at once by the next boundary: a browser shows a part only once it
        # sees the boundary after it, so a stream that stopped (stale, down) still shows its last frame.
        self.wfile.write(f"--{BOUNDARY}\r\n".encode())
        seq = 0  # published frames count from 1
        while (item := view.next_frame(name, seq)) is not None:
            jpeg, seq = item
            if jpeg:
                head = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + f"\r\n--{BOUNDARY}\r\n".encode())
                self.wfile.flush()


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

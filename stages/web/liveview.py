"""Live view in a browser: MJPEG per stream, a status page, /status.json and /metrics.

    view = LiveView(port=8080, registry=metrics.registry).start()   # 127.0.0.1 unless told
    view.publish("cam1", annotated_bgr_frame, {"label": "tabby cat", "fps": 24.9, "state": "streaming",
                                               "latency_p50_ms": 41, "latency_p99_ms": 80})
    view.close()

Routes: `/` the page (every stream with its label, fps, p50/p99 latency and state, refreshed from
/status.json every 500 ms; streams appear and vanish as they come and go), `/stream/<name>.mjpg`
(multipart/x-mixed-replace), `/snapshot/<name>.jpg`, `/status.json`, `/metrics` (Prometheus text of
the given registry), and `/api/...` handed to `api` (stages.web.api) when one is given. Stream names
are URL-quoted in paths and HTML-escaped in the page.

Each stream has its own Condition: publish() wakes only that stream's MJPEG clients, which block
between frames (no polling). May block: publish() only to encode a frame given as an array;
close() until every client handler has returned (each wakes at once on close).
"""

from __future__ import annotations

import html
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import cv2
import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

BOUNDARY = "vidpipe-frame"
KEEPALIVE_S = 5.0  # an idle stream re-sends its last frame this often, so dead clients are noticed
MJPEG_ON_PAGE = 4  # browsers allow ~6 connections per host: further streams refresh snapshots


class _Stream:
    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)  # wakes this stream's MJPEG clients only
        self.jpeg = b""
        self.seq = 0  # frames published
        self.removed = False
        self.info: dict[str, Any] = {}
        self.t_updated = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler: nothing outlives close()
    block_on_close = True
    view: LiveView


class LiveView:
    """The HTTP server; see the module docstring. Thread-safe: publish() from any thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, registry: CollectorRegistry | None = None,
                 jpeg_quality: int = 80, title: str = "vidpipe live", api: Any = None,
                 status_extra: Callable[[], dict[str, Any]] | None = None) -> None:
        self.host, self.port = host, port
        self.api = api  # stages.web.api.StreamsApi (or anything with its handle()); None: no /api
        self.status_extra = status_extra  # more keys for /status.json (restarts, event counts)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.jpeg_quality = jpeg_quality
        self.title = title
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
            if info is not None:
                s.info = dict(info)
            s.t_updated = time.time()
            s.cond.notify_all()

    def status(self) -> dict[str, Any]:
        """What /status.json serves."""
        now = time.time()
        with self.lock:
            streams = {name: {**s.info, "frames_shown": s.seq, "age_s": round(now - s.t_updated, 3)}
                       for name, s in self.streams.items()}
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
        figures = "\n".join(_figure(name, i < MJPEG_ON_PAGE) for i, name in enumerate(names))
        return _PAGE.replace("{title}", html.escape(self.title)).replace("{figures}", figures)


def encode_jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a frame of shape {frame.shape} as JPEG")
    return buf.tobytes()


def _figure(name: str, mjpeg: bool) -> str:
    path = quote(name, safe="")
    src = f"/stream/{path}.mjpg" if mjpeg else f"/snapshot/{path}.jpg"
    return (f'<figure class="stream" data-stream="{html.escape(name)}" data-mjpeg="{int(mjpeg)}">'
            f'<img src="{src}" alt="{html.escape(name)}"><figcaption><b>{html.escape(name)}</b> '
            '<span class="label"></span><br><span class="meta"></span></figcaption></figure>')


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
        seq = 0  # published frames count from 1
        while (item := view.next_frame(name, seq)) is not None:
            jpeg, seq = item
            if jpeg:
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                self.wfile.flush()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body { font-family: sans-serif; background: #111; color: #eee; margin: 1em; }
#streams { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; background: #222; padding: .5em; border-radius: 6px; }
img { display: block; max-width: 480px; min-width: 160px; background: #000; }
.label { font-size: 1.3em; color: #7fdc7f; }
.meta { font-size: .85em; color: #aaa; }
.state-streaming { color: #7fdc7f; } .state-failed { color: #f66; } .state-stalled, .state-backing_off { color: #fc6; }
</style></head>
<body><h1>{title}</h1><div id="streams">
{figures}
</div><p class="meta" id="updated"></p>
<script>
"use strict";
const fmt = (v, unit) => (v === null || v === undefined) ? "-" : `${v}${unit}`;
function figureFor(name) {
  for (const f of document.querySelectorAll("figure.stream")) if (f.dataset.stream === name) return f;
  const f = document.createElement("figure");
  const mjpeg = document.querySelectorAll("figure[data-mjpeg='1']").length < """ + str(MJPEG_ON_PAGE) + """;
  f.className = "stream"; f.dataset.stream = name; f.dataset.mjpeg = mjpeg ? "1" : "0";
  const img = document.createElement("img"), cap = document.createElement("figcaption");
  img.alt = name;
  img.src = (mjpeg ? "/stream/" : "/snapshot/") + encodeURIComponent(name) + (mjpeg ? ".mjpg" : ".jpg");
  const b = document.createElement("b"); b.textContent = name;
  const label = document.createElement("span"); label.className = "label";
  const meta = document.createElement("span"); meta.className = "meta";
  cap.append(b, " ", label, document.createElement("br"), meta); f.append(img, cap);
  document.getElementById("streams").append(f);
  return f;
}
async function poll() {
  try {
    const r = await fetch("/status.json", {cache: "no-store"});
    const status = await r.json();
    for (const f of document.querySelectorAll("figure.stream")) {
      if (!(f.dataset.stream in status.streams)) f.remove();  // removed at run time
    }
    for (const [name, s] of Object.entries(status.streams)) {
      const f = figureFor(name);
      f.querySelector(".label").textContent = s.label ?? "";
      const meta = f.querySelector(".meta");
      meta.textContent = `${s.state ?? "?"} | ${fmt(s.fps, " fps")} | p50 ${fmt(s.latency_p50_ms, " ms")}` +
                         ` | p99 ${fmt(s.latency_p99_ms, " ms")}`;
      meta.className = "meta state-" + (s.state ?? "unknown");
      if (f.dataset.mjpeg === "0") {
        f.querySelector("img").src = "/snapshot/" + encodeURIComponent(name) + ".jpg?n=" + s.frames_shown;
      }
    }
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("updated").textContent = "live view unreachable: " + e;
  }
  setTimeout(poll, 500);
}
poll();
</script></body></html>
"""

"""The tests' own IP camera: MJPEG over HTTP on 127.0.0.1, frames generated with numpy.

    with MjpegServer(fps=25) as cam:       # ephemeral port
        cv2.VideoCapture(cam.url())        # http://127.0.0.1:PORT/x.mjpg
        cam.stop(); cam.start()            # the camera vanishes and comes back on the SAME port
        cam.freeze(); cam.unfreeze()       # connections stay open but no frame is sent (a hung camera)

Every path ending in .mjpg streams multipart/x-mixed-replace JPEGs at `fps`; /snapshot.jpg
returns one JPEG. `frame_fn(i)` makes frame i (BGR uint8); replace it to change the content.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import cv2
import numpy as np

from tests.media import pattern_frame

BOUNDARY = "vidpipeframe"


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True
    allow_reuse_address = True  # restart on the same port while old sockets are in TIME_WAIT
    owner: MjpegServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 5.0  # a client that stops reading cannot pin a handler thread forever

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        owner = self.server.owner
        if self.path.split("?")[0].endswith(".mjpg"):
            self._stream(owner)
        elif self.path.startswith("/snapshot.jpg"):
            self._send_jpeg(owner.jpeg(owner.frames_sent))
        else:
            self.send_error(404)

    def _send_jpeg(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, owner: MjpegServer) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        owner.connections += 1
        period = 1.0 / owner.fps
        next_t = time.monotonic()
        try:
            while not owner.stopping.is_set():
                if not owner.frozen.is_set():
                    data = owner.jpeg(owner.next_index())
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                    self.wfile.write(head.encode() + data + b"\r\n")
                    self.wfile.flush()
                next_t = max(next_t + period, time.monotonic() - period)
                owner.stopping.wait(max(0.0, next_t - time.monotonic()))  # frame pacing, not sync
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the client went away: a camera does not care


class MjpegServer:
    """A restartable MJPEG-over-HTTP camera on 127.0.0.1 (see the module docstring)."""

    def __init__(self, frame_fn: Callable[[int], np.ndarray] | None = None, fps: float = 25.0,
                 width: int = 160, height: int = 120, port: int = 0, quality: int = 80) -> None:
        self.frame_fn = frame_fn or (lambda i: pattern_frame(i, width, height))
        self.fps = fps
        self.quality = quality
        self.port = port
        self.frames_sent = 0
        self.connections = 0  # streaming connections accepted so far (reconnects show here)
        self.stopping = threading.Event()
        self.frozen = threading.Event()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "x.mjpg", userinfo: str = "") -> str:
        auth = f"{userinfo}@" if userinfo else ""
        return f"http://{auth}127.0.0.1:{self.port}/{path}"

    def next_index(self) -> int:
        with self._lock:
            i = self.frames_sent
            self.frames_sent += 1
            return i

    def jpeg(self, i: int) -> bytes:
        ok, buf = cv2.imencode(".jpg", self.frame_fn(i), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        assert ok
        return buf.tobytes()

    def start(self) -> MjpegServer:
        assert self._server is None, "already running"
        self.stopping.clear()
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.owner = self
        self.port = server.server_address[1]  # fixed from now on: restarts reuse it
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mjpeg-server-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every stream (clients see EOF); joins all threads."""
        if self._server is None:
            return
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()  # joins the handler threads (block_on_close)
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._server, self._thread = None, None

    def freeze(self) -> None:
        self.frozen.set()

    def unfreeze(self) -> None:
        self.frozen.clear()

    def __enter__(self) -> MjpegServer:
        return self.start() if self._server is None else self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

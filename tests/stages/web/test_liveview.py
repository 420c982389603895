"""LiveView over real HTTP (urllib): page, status.json, snapshots, MJPEG, metrics, shutdown."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.client import HTTPResponse
from typing import Any

import cv2
import numpy as np
import pytest

from tests.media import pattern_frame
from vidpipe.stages.web.app import BOUNDARY
from vidpipe.stages.web.liveview import LiveView
from vidpipe.stages.web.metrics import Metrics

NAME = 'cam 1/<b>"x"'  # needs quoting in paths and escaping in HTML
QUOTED = "cam%201%2F%3Cb%3E%22x%22"


@pytest.fixture
def view() -> Iterator[LiveView]:
    metrics = Metrics()
    metrics.frame("cam1", latency_s=0.03)
    with LiveView(port=0, registry=metrics.registry) as v:
        yield v


def get(view: LiveView, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(view.url.rstrip("/") + path, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def read_part(resp: HTTPResponse) -> bytes:
    """One JPEG from a multipart/x-mixed-replace response."""
    line = resp.readline()
    while line.strip() == b"":
        line = resp.readline()
    assert line.strip() == f"--{BOUNDARY}".encode()
    headers: dict[str, str] = {}
    while (line := resp.readline().strip()):
        key, _, value = line.decode().partition(":")
        headers[key.lower()] = value.strip()
    assert headers["content-type"] == "image/jpeg"
    return resp.read(int(headers["content-length"]))


class Publisher:
    """Publishes a moving pattern at ~50 fps until stopped (pacing only, joined on exit)."""

    def __init__(self, view: LiveView, stream: str, info: dict[str, Any]) -> None:
        self.view, self.stream, self.info = view, stream, info
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        i = 1
        while not self.stop.wait(0.02):
            self.view.publish(self.stream, pattern_frame(i, 160, 120), self.info)
            i += 1

    def __enter__(self) -> Publisher:
        self.view.publish(self.stream, pattern_frame(0, 160, 120), self.info)  # known before any client asks
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def test_binds_localhost_by_default() -> None:
    v = LiveView(port=0)
    assert v.host == "127.0.0.1"
    with v:
        assert v.url.startswith("http://127.0.0.1:") and v.port > 0


def test_page_lists_streams_escaped(view: LiveView) -> None:
    view.publish(NAME, pattern_frame(0, 160, 120), {"label": "tabby cat"})
    code, ctype, body = get(view, "/")
    page = body.decode()
    assert code == 200 and ctype.startswith("text/html")
    assert "cam 1/&lt;b&gt;&quot;x&quot;" in page and NAME not in page
    assert f'src="/stream/{QUOTED}.mjpg"' in page
    assert "/status.json" in page and "setTimeout(poll, 500)" in page


def test_status_json(view: LiveView) -> None:
    view.publish(NAME, pattern_frame(0, 160, 120), {"label": "tabby cat", "fps": 24.5, "state": "streaming"})
    view.publish(NAME, None, {"label": "tiger cat", "fps": 25.0, "state": "streaming"})
    code, ctype, body = get(view, "/status.json")
    assert code == 200 and ctype == "application/json"
    s = json.loads(body)["streams"][NAME]
    assert s["label"] == "tiger cat" and s["fps"] == 25.0 and s["state"] == "streaming"
    assert s["frames_shown"] == 1 and 0 <= s["age_s"] < 5


def test_snapshot(view: LiveView) -> None:
    view.publish(NAME, pattern_frame(3, 160, 120), {})
    view.publish("info-only", None, {"state": "connecting"})
    code, ctype, body = get(view, f"/snapshot/{QUOTED}.jpg")
    assert code == 200 and ctype == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (120, 160, 3)
    assert get(view, "/snapshot/info-only.jpg")[0] == 503
    assert get(view, "/snapshot/nope.jpg")[0] == 404
    assert get(view, "/stream/nope.mjpg")[0] == 404
    assert get(view, "/nope")[0] == 404


def test_publish_accepts_jpeg_bytes(view: LiveView) -> None:
    ok, buf = cv2.imencode(".jpg", pattern_frame(1, 64, 48))
    assert ok
    view.publish("cam", buf.tobytes(), {"label": "x"})
    assert get(view, "/snapshot/cam.jpg")[2] == buf.tobytes()


def test_metrics_endpoint(view: LiveView) -> None:
    code, ctype, body = get(view, "/metrics")
    assert code == 200 and ctype.startswith("text/plain")
    assert 'vidpipe_frames_total{stream="cam1"} 1.0' in body.decode()


def test_mjpeg_stream_delivers_new_frames(view: LiveView) -> None:
    with Publisher(view, NAME, {"label": "x"}), urllib.request.urlopen(f"{view.url}stream/{QUOTED}.mjpg",
                                                                    timeout=5) as resp:
        assert resp.headers["Content-Type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        parts = [read_part(resp) for _ in range(5)]
    frames = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR) for p in parts]
    assert all(f.shape == (120, 160, 3) for f in frames)
    assert len({p for p in parts}) >= 4  # each part is a newer frame (a keepalive repeat at most)


def test_clients_going_away_and_close_with_open_streams(capfd: pytest.CaptureFixture[str]) -> None:
    view = LiveView(port=0).start()
    try:
        with Publisher(view, "cam", {}):
            for _ in range(3):  # clients that read a frame and vanish
                with urllib.request.urlopen(f"{view.url}stream/cam.mjpg", timeout=5) as resp:
                    read_part(resp)
            stuck = urllib.request.urlopen(f"{view.url}stream/cam.mjpg", timeout=5)  # stays open
            read_part(stuck)
            t0 = time.monotonic()
            view.close()  # wakes the open stream's handler and joins it
            assert time.monotonic() - t0 < 3
            stuck.close()
    finally:
        view.close()
    assert not [t for t in threading.enumerate() if t.name == "liveview-http"]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(view.url, timeout=2)
    assert "Traceback" not in capfd.readouterr().err


def test_clients_that_never_read_do_not_hold_the_frames_up() -> None:
    """20 MJPEG clients that stop reading (their socket buffers fill) and 20 that never send a whole
    request: publishing goes on at full speed, and a new client is still served."""
    with LiveView(port=0) as view:
        frame = pattern_frame(0, 640, 360)
        view.publish("cam", frame, {})
        stuck = []
        for i in range(40):
            s = socket.create_connection(("127.0.0.1", view.port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /stream/cam.mjpg HTTP/1.1\r\nHost: x\r\n\r\n" if i % 2 else b"GET /stream/cam")
            stuck.append(s)
        t0 = time.monotonic()
        for i in range(200):
            view.publish("cam", pattern_frame(i, 640, 360), {"label": str(i)})
        publish_s = time.monotonic() - t0
        assert get(view, "/status.json")[0] == 200
        assert json.loads(get(view, "/status.json")[2])["streams"]["cam"]["label"] == "199"
        for s in stuck:
            s.close()
    assert publish_s < 5.0, f"200 frames took {publish_s:.1f} s to publish"

"""The live view in a real headless Chromium, driven over the DevTools protocol.

The WebSocket client below is the smallest that CDP needs (stdlib only: no new dependency).
Debian's package: `apt-get install -y chromium` (/usr/bin/chromium).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from tests.media import pattern_frame
from vidpipe.stages.web.liveview import LiveView

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]
STREAM = "cam <1>"


class Cdp:
    """Chrome DevTools Protocol over a minimal RFC 6455 client: text frames, masking, ping/pong."""

    def __init__(self, ws_url: str, timeout: float = 20.0) -> None:
        u = urlsplit(ws_url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "DevTools closed the connection during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        self.next_id = 0
        self.events: list[dict[str, Any]] = []  # events that arrived while waiting for a reply

    def _recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "DevTools connection closed"
            data += chunk
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode])
        head += bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + struct.pack("!H", n) if n < 65536
                                                  else bytes([0x80 | 127]) + struct.pack("!Q", n))
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def _recv_message(self) -> bytes:
        message = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._recv_exact(8))[0]
            payload = self._recv_exact(n)  # server frames are never masked
            opcode = b0 & 0x0F
            if opcode == 9:
                self._send_frame(10, payload)  # pong
            elif opcode == 8:
                raise ConnectionError("DevTools closed the WebSocket")
            elif opcode in (0, 1, 2):
                message += payload
                if b0 & 0x80:
                    return message

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self._send_frame(1, json.dumps({"id": self.next_id, "method": method, "params": params}).encode())
        while True:
            reply = json.loads(self._recv_message())
            if "method" in reply:
                self.events.append(reply)
            elif reply.get("id") == self.next_id:
                assert "error" not in reply, reply["error"]
                return dict(reply["result"])

    def wait_event(self, method: str) -> dict[str, Any]:
        """The first `method` event (the socket timeout bounds the wait)."""
        while True:
            for i, event in enumerate(self.events):
                if event["method"] == method:
                    return self.events.pop(i)
            self.events.append(json.loads(self._recv_message()))

    def open(self, url: str, event: str = "Page.loadEventFired") -> None:
        """Navigates and waits for the load event (or `event`, e.g. Page.domContentEventFired when an
        MJPEG image may never load), so no later call races the navigation."""
        self.call("Page.enable")
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_event(event)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"].get("exception", {}).get("description", result))
        return result["result"].get("value")

    def close(self) -> None:
        self.sock.close()


class Chromium:
    """Headless Chromium with remote debugging on an ephemeral port; `extra`: more command-line flags."""

    def __init__(self, profile: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--window-size=1000,700", *extra, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)  # its renderer processes share the group: stopped together
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read_stderr)
        self.reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def devtools_port(self, timeout: float = 30.0) -> int:
        seen: list[str] = []
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"chromium exited: {''.join(seen)[-2000:]}")
            seen.append(line)
            if m := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line):
                return int(m.group(1))

    def page(self, url: str) -> Cdp:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.devtools_port()}/json/list", timeout=10) as r:
            targets = json.load(r)
        cdp = Cdp(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        cdp.open(url)
        return cdp

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.reader.join(timeout=10)


def wait_js(condition: str, what: str, timeout_ms: int = 10_000) -> str:
    """A JS promise resolving with `condition`'s value once truthy (the browser polls, not Python)."""
    return f"""new Promise((resolve, reject) => {{
      const deadline = Date.now() + {timeout_ms};
      const check = () => {{
        let v; try {{ v = ({condition}); }} catch (e) {{ v = undefined; }}
        if (v) return resolve(v);
        if (Date.now() > deadline) return reject(new Error({json.dumps(what)} + " not reached in time"));
        setTimeout(check, 50);
      }};
      check();
    }})"""


FIGURE = "[...document.querySelectorAll('figure.stream')].find(f => f.dataset.stream === {name})"
LABEL = f"({FIGURE}).querySelector('.label').textContent"
META = f"({FIGURE}).querySelector('.meta').textContent"

# Draws the stream's <img> (the MJPEG) into a canvas and waits for `n` different pictures.
DISTINCT_FRAMES = """new Promise((resolve, reject) => {
  const img = (FIGURE).querySelector('img');
  const canvas = document.createElement('canvas'); const ctx = canvas.getContext('2d');
  const seen = new Set(); const deadline = Date.now() + 10000;
  const check = () => {
    if (img.naturalWidth > 0) {
      canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
      ctx.drawImage(img, 0, 0);
      const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let h = 0; for (let i = 0; i < px.length; i += 7) h = (h * 31 + px[i]) >>> 0;
      seen.add(h);
    }
    if (seen.size >= N) return resolve({distinct: seen.size, width: img.naturalWidth, height: img.naturalHeight});
    if (Date.now() > deadline) return reject(new Error('image did not update: ' + seen.size + ' pictures'));
    setTimeout(check, 40);
  };
  check();
})"""


class Feeder:
    """Publishes STREAM at ~25 fps: moving `content` frames with `label` (pacing only)."""

    def __init__(self, view: LiveView) -> None:
        self.view = view
        self.label, self.content = "tabby cat", 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def frame(self, i: int) -> np.ndarray:
        img = pattern_frame(i, 160, 120)
        if self.content:
            img[:] = 255 - img  # different "scene"
        return img

    def publish(self, i: int) -> None:
        info = {"label": self.label, "score": 0.713, "fps": 25.0, "state": "streaming", "latency_p50_ms": 41.0,
                "latency_p99_ms": 80.0}
        self.view.publish(STREAM, self.frame(i), info)

    def _run(self) -> None:
        i = 1
        while not self.stop.wait(0.04):
            self.publish(i)
            i += 1

    def __enter__(self) -> Feeder:
        self.publish(0)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[tuple[LiveView, Feeder, Cdp]]:
    with LiveView(port=0) as view, Feeder(view) as feeder:
        chromium = Chromium(tmp_path / "profile")
        try:
            cdp = chromium.page(view.url)
            try:
                yield view, feeder, cdp
            finally:
                cdp.close()
        finally:
            chromium.close()


def test_page_shows_live_images_and_labels(browser_page: tuple[LiveView, Feeder, Cdp], tmp_path: Path) -> None:
    view, feeder, cdp = browser_page
    name = json.dumps(STREAM)
    assert cdp.evaluate(wait_js("document.readyState === 'complete'", "page load")) is True
    assert cdp.evaluate(wait_js(LABEL.format(name=name) + " === 'tabby cat'", "first label")) is True
    meta = cdp.evaluate(wait_js(META.format(name=name), "meta text"))
    assert meta == "capture → label p50 41 ms · p99 80 ms · 25 fps"
    assert cdp.evaluate(f"({FIGURE.format(name=name)}).querySelector('.score').textContent") == "71%"
    assert cdp.evaluate(f"({FIGURE.format(name=name)}).querySelector('.badge').textContent") == "LIVE"

    seen = cdp.evaluate(DISTINCT_FRAMES.replace("FIGURE", FIGURE.format(name=name)).replace("N", "3"))
    assert seen["distinct"] >= 3 and (seen["width"], seen["height"]) == (160, 120)

    feeder.label, feeder.content = "espresso", 1  # the scene changes, and so does the label
    assert cdp.evaluate(wait_js(LABEL.format(name=name) + " === 'espresso'", "changed label")) is True

    view.publish("late <2>", pattern_frame(0, 160, 120), {"label": "added later", "state": "connecting"})
    late = json.dumps("late <2>")
    assert cdp.evaluate(wait_js(LABEL.format(name=late) + " === 'added later'", "new stream")) is True
    assert cdp.evaluate("document.querySelectorAll('figure.stream').length") == 2
    assert cdp.evaluate("document.title") == "vidpipe live"

    shot = cdp.call("Page.captureScreenshot", format="png")
    (tmp_path / "liveview.png").write_bytes(base64.b64decode(shot["data"]))  # for a person to look at

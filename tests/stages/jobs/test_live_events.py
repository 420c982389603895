"""Label events out of a running `vidpipe live` (cpu backend, real labels): a real webhook receiver
and a real MQTT broker (Debian's mosquitto) on 127.0.0.1, events.START.jsonl, and an event clip whose
frames and duration are checked. The scene: coffee, then a cat, then coffee again."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from tests.media import CAT, COFFEE
from tests.stages.jobs.test_live_job import Live, lines, wait_until

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CATS = ("tabby", "tiger cat", "Egyptian cat")
FPS = 10


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 503 to its first request (the sender must retry)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests += 1
                if owner.requests == 1:
                    self.send_response(503)
                else:
                    owner.events.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; CI installs it)")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until("the broker", lambda: _accepts(port), timeout=10)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Subscriber:
    """paho-mqtt subscribed to PREFIX/#, collecting (topic, event)."""

    def __init__(self, port: int, prefix: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rc, p: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, json.loads(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK from the broker"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_label_events_reach_webhook_mqtt_and_jsonl_and_a_clip_is_recorded(tmp_path: Path, broker: int) -> None:
    scene = [COFFEE] * (2 * FPS) + [CAT] * (3 * FPS) + [COFFEE] * (4 * FPS)
    video = _video(tmp_path / "scene.mp4", scene)
    sub = Subscriber(broker, "vp")
    with Receiver() as hook:
        cfg = tmp_path / "live.yaml"
        cfg.write_text(
            "job: live\nbackend:\n  name: cpu\n  max_batch: 4\nlive:\n  status_interval_s: 0\n"
            f"  events:\n    webhook: {hook.url}\n    mqtt: mqtt://127.0.0.1:{broker}/vp\n    smoothing_window: 3\n"
            f"  clips:\n    labels: [{', '.join(CATS)}]\n    pre_s: 1\n    post_s: 1\n    fps: {FPS}\n"
            f"  sources:\n    - uri: {video}\n      name: cam\n")
        out = tmp_path / "out"
        live = Live(["--config", str(cfg)], out)
        try:
            wait_until("the clip event", lambda: any(e["type"] == "clip" for e in lines(out, "events")),
                       timeout=90)
            events = lines(out, "events")
            labels = [e for e in events if e["type"] == "label"]
            wait_until("webhook and MQTT deliveries", lambda: len(hook.events) >= len(events)
                       and len(sub.messages) >= len(events), timeout=20)
            metrics = live.url() + "metrics"


            text = urllib.request.urlopen(metrics, timeout=5).read().decode()
        finally:
            assert live.stop() == 0
            sub.close()
    # label changes: into a cat and out of it again, each with its times and the label before
    names = [e["label"] for e in labels]
    into = next(i for i, n in enumerate(names) if n in CATS)
    assert labels[into]["previous"] not in CATS and any(n not in CATS for n in names[into:])
    assert {"stream", "label", "score", "previous", "time", "time_iso", "stream_time_s", "frame"} <= set(labels[0])
    assert labels[0]["stream"] == "cam" and labels[0]["previous"] is None
    # the same events reached the webhook (after one retry) and MQTT (on PREFIX/STREAM)
    assert hook.events[: len(events)] == events and hook.requests == len(hook.events) + 1
    assert [m for _, m in sub.messages[: len(events)]] == events and {t for t, _ in sub.messages} == {"vp/cam"}
    assert 'vidpipe_events_total{outcome="sent",sink="webhook"}' in text
    # the clip: listed, playable, its frames at the clip rate covering pre + the cat run + post
    clip = next(e for e in events if e["type"] == "clip")
    path = Path(clip["path"])
    assert path.exists() and not path.with_name(path.name + ".part").exists()
    assert path.parent.name == "clips" and path.name.startswith("cam_") and clip["label"] in CATS
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        duration = float(container.streams.video[0].frames / FPS)
    assert len(frames) == clip["frames"] and abs(duration - clip["duration_s"]) < 0.15
    print(f"clip: {len(frames)} frames, {clip['duration_s']} s")
    assert 3.5 <= clip["duration_s"] <= 6.5  # 1 s before + ~3 s of cat + 1 s after
    assert _looks_like(frames[0], COFFEE) and _looks_like(frames[len(frames) // 2], CAT)


def _video(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for img in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")))
        container.mux(stream.encode(None))
    return path


def _looks_like(frame: np.ndarray, photo: np.ndarray) -> bool:
    """Nearer to `photo` than to the other scene (the overlay covers a corner)."""
    other = CAT if photo is COFFEE else COFFEE
    small = cv2.resize(frame, (80, 60)).astype(float)
    return bool(np.abs(small - cv2.resize(photo, (80, 60))).mean() < np.abs(small - cv2.resize(other, (80, 60))).mean())


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False



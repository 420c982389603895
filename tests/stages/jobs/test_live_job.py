"""`vidpipe live` end to end: a real MJPEG camera on 127.0.0.1 that vanishes and comes back, a
real-time file beside it, the live view and /metrics over HTTP, overload with bounded latency."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.media import CAT, write_video
from tests.mjpeg_server import MjpegServer
from tests.processes import wait_for
from vidpipe.stages.live_files import segments

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]



def lines(out: Path, stream: str) -> list[dict]:
    """The complete lines of a stream's JSONL segments (OUT/STREAM.START.jsonl; `events`: the events'), in order."""
    return [json.loads(x) for p in segments(out, stream) for x in p.read_text().splitlines() if x.endswith("}")]


def wait_until(what: str, cond: Callable[[], bool], timeout: float = 30.0) -> None:
    """tests.processes.wait_for, `what` first: how the live tests read."""
    wait_for(cond, timeout, what)


class Live:
    """`vidpipe live ...` in a subprocess; its stderr collected by a thread-free pipe read at the end."""

    def __init__(self, args: list[str], out: Path) -> None:
        self.out = out
        self.log = out.parent / "live.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vidpipe.stages.jobs.cli", "live", *args, "--out", str(out), "--port", "0"],
            stderr=self.log.open("w"),
            stdout=subprocess.DEVNULL,
        )

    def url(self) -> str:
        wait_until("the live view", lambda: "live view on" in self.log.read_text())
        return re.search(r"live view on (https?://\S+)", self.log.read_text()).group(1)  # type: ignore[union-attr]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=20)


@pytest.fixture
def camera() -> Iterator[MjpegServer]:
    with MjpegServer(frame_fn=lambda i: CAT, fps=15, width=320, height=240) as cam:
        yield cam


def test_camera_drops_and_reconnects_while_the_other_stream_goes_on(camera: MjpegServer, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=50, width=160, height=120, fps=20)
    out = tmp_path / "out"
    sources = f"    - uri: {camera.url()}\n    - uri: {clip}\n      loop: true\n"
    live = Live(["--config", str(_config(tmp_path, sources))], out)
    cam = f"127.0.0.1_{camera.port}_x.mjpg"
    try:
        wait_until("labels from both streams", lambda: len(lines(out, cam)) > 10 and len(lines(out, "clip")) > 10)
        assert lines(out, cam)[-1]["names"][0] in ("tiger cat", "Egyptian cat", "tabby")
        camera.stop()
        before = len(lines(out, "clip"))
        time.sleep(3)  # the camera is gone for a while
        assert len(lines(out, "clip")) > before + 20  # the other stream never stopped
        n_cam = len(lines(out, cam))
        camera.start()
        wait_until("labels to resume after reconnect", lambda: len(lines(out, cam)) > n_cam + 10)
        base = live.url()
        metrics = urllib.request.urlopen(base + "metrics", timeout=5).read().decode()
        reconnects = re.search(r'vidpipe_reconnects_total\{stream="127[^"]*"\} (\d+)', metrics)
        assert reconnects and int(reconnects.group(1)) >= 1
        status = json.loads(urllib.request.urlopen(base + "status.json", timeout=5).read())
        assert set(status["streams"]) == {cam, "clip"}
    finally:
        code = live.stop()
    assert code == 0
    assert not list(Path("/dev/shm").glob(f"vidpipe_{live.proc.pid}_*"))


def test_overload_keeps_latency_bounded_and_counts_drops(tmp_path: Path) -> None:
    # A "card" that needs 40 ms per image fed by a 50 fps camera: 2x overloaded.
    with MjpegServer(fps=50, width=320, height=240) as cam:
        cfg = _config(
            tmp_path,
            f"    - uri: {cam.url()}\n",
            backend="backend:\n  name: sim\n  max_batch: 1\n  sim:\n    base_ms: 0\n    per_image_ms: 40\n",
        )
        out = tmp_path / "out"
        live = Live(["--config", str(cfg)], out)
        stream = f"127.0.0.1_{cam.port}_x.mjpg"
        try:
            wait_until("150 results", lambda: len(lines(out, stream)) >= 150, timeout=60)
            metrics = urllib.request.urlopen(live.url() + "metrics", timeout=5).read().decode()
        finally:
            assert live.stop() == 0
    latencies = np.array([r["latency_ms"] for r in lines(out, stream)])
    first, last = latencies[20:60], latencies[-40:]
    assert np.percentile(latencies[20:], 99) < 500  # bounded: no backlog builds up
    assert np.median(last) < np.median(first) * 2 + 50  # and it does not grow with time
    drops = sum(float(m) for m in re.findall(r"vidpipe_drops_total\{[^}]*\} ([\d.]+)", metrics))
    assert drops > 50  # about half the camera's frames cannot be served, and each one is counted


def _config(tmp_path: Path, sources: str, backend: str = "") -> Path:
    cfg = tmp_path / "live.yaml"
    cfg.write_text(f"job: live\n{backend}live:\n  status_interval_s: 1\n  sources:\n{sources}")
    return cfg


def test_sources_that_can_never_open_are_one_line_each_and_exit_1(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    t0 = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "vidpipe", "live", "97", "/nonexistent.mp4", str(empty), "foo://cam",
                          "--out", str(tmp_path / "o"), "--port", "0"], capture_output=True, text=True, timeout=60)
    print(f"vidpipe live with 4 sources that can never open: exit {run.returncode} in {time.monotonic() - t0:.2f} s")
    assert run.returncode == 1, run.stderr
    said = run.stderr.splitlines()
    assert len(said) == 4 and "ERROR" in said[0] and "Traceback" not in run.stderr, run.stderr
    assert "live.sources[0]: camera 97: /dev/video97 does not exist (" in said[0]
    assert said[1:] == ["live.sources[1]: /nonexistent.mp4: no such file, folder or camera",
                        f"live.sources[2]: {empty}: no images (.jpg, .jpeg, .png, .bmp, .webp, .tif, .tiff) in the "
                        "folder",
                        "live.sources[3]: foo://cam: foo:// is not a stream protocol (rtsp, http, rtmp, srt, udp...)"]
    assert not (tmp_path / "o").exists()  # nothing is made when nothing can run


def test_with_serve_the_run_waits_for_streams_added_over_the_api(tmp_path: Path) -> None:
    live = Live(["97", "/nonexistent.mp4", "--serve"], tmp_path / "out")
    try:
        base = live.url()
        assert json.loads(urllib.request.urlopen(base + "status.json", timeout=5).read())["streams"] == {}
        clip = write_video(tmp_path / "clip.mp4", frames=40, width=160, height=120, fps=20)
        body = json.dumps({"uri": str(clip), "loop": True}).encode()
        request = urllib.request.Request(base + "api/streams", body, {"Content-Type": "application/json"})
        assert urllib.request.urlopen(request, timeout=15).status == 201
        wait_until("labels of the stream added", lambda: len(lines(live.out, "clip")) > 5)
        assert live.proc.poll() is None
    finally:
        code = live.stop()
    assert code == 1  # the sources that could not open are still a failure
    errors = [line for line in live.log.read_text().splitlines() if "ERROR" in line]
    assert len(errors) == 2 and "Traceback" not in live.log.read_text()


def test_when_every_source_has_failed_the_run_ends_with_exit_1(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed: nothing answers there
    live = Live(["--config", str(_config(tmp_path, f"    - uri: http://127.0.0.1:{port}/x.mjpg\n"
                                                   "      max_retries: 0\n"))], tmp_path / "out")
    assert live.proc.wait(timeout=60) == 1  # the API is on, but no stream is left: the run ends
    log = live.log.read_text()
    errors = [line for line in log.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and f"http://127.0.0.1:{port}/x.mjpg: cannot open" in errors[0]
    assert "Traceback" not in log

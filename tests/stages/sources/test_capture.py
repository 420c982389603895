"""LiveCapture against the tests' own MJPEG camera, real-time files, image folders and fakes."""

from __future__ import annotations

import itertools
import logging
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.media import write_video
from tests.mjpeg_server import MjpegServer
from vidpipe.pipeline.errors import SourceError
from vidpipe.stages.config import SourceSettings
from vidpipe.stages.descriptors import SourceState
from vidpipe.stages.sources.capture import CapturedFrame, LiveCapture
from vidpipe.stages.sources.readers import source_kind

S = SourceState
FAST = SourceSettings("", stall_timeout_s=1.0, open_timeout_s=2.0, backoff_initial_s=0.05, backoff_max_s=0.3,
                      max_retries=2)


def fast(uri: str) -> SourceSettings:
    """`uri` with short timeouts and back-off: tests see reconnects in a second, not a minute."""
    return replace(FAST, uri=uri)


@pytest.fixture
def cam() -> Iterator[MjpegServer]:
    with MjpegServer(fps=25) as server:
        yield server


def take(cap: LiveCapture, n: int, timeout: float = 10.0) -> list[CapturedFrame]:
    out: list[CapturedFrame] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        item = cap.get_latest(timeout=max(0.0, deadline - time.monotonic()))
        if item is not None:
            out.append(item)
        elif cap.done:
            break
    return out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pause(seconds: float) -> None:
    """Scenario timing (an outage that lasts, a consumer that works), never synchronisation."""
    threading.Event().wait(seconds)


def state_sequence(cap: LiveCapture) -> list[SourceState]:
    return [state for _, state in cap.transitions()]


def is_subsequence(needle: list[SourceState], hay: list[SourceState]) -> bool:
    it = iter(hay)
    return all(any(x is y for y in it) for x in needle)


def test_source_kind(tmp_path: Path) -> None:
    assert source_kind("0") == "camera"
    assert source_kind("/dev/video2") == "camera"
    assert source_kind("rtsp://u:p@h/s") == "url"
    assert source_kind("https://h/x.mjpg") == "url"
    assert source_kind(str(tmp_path)) == "folder"
    assert source_kind(str(tmp_path / "a.mp4")) == "file"


# ---------------------------------------------------------------------------------- MJPEG camera

def test_ffmpeg_opens_the_mjpeg_server_without_hints(cam: MjpegServer) -> None:
    cap = cv2.VideoCapture(cam.url(), cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000])
    try:
        assert cap.isOpened()
        ok, frame = cap.read()
        assert ok and frame.shape == (120, 160, 3)
    finally:
        cap.release()


def test_frames_arrive_from_the_mjpeg_camera(cam: MjpegServer) -> None:
    cap = LiveCapture(fast(cam.url()), name="cam")
    try:
        frames = take(cap, 30)
        assert len(frames) == 30
        assert frames[0].frame.shape == (120, 160, 3) and frames[0].frame.dtype == np.uint8
        assert [f.seq for f in frames] == sorted({f.seq for f in frames})
        st = cap.stats()
        assert st.state is S.STREAMING and st.reconnects == 0 and st.error == ""
        assert 18 <= st.fps <= 32  # the camera sends 25 fps
        assert st.frames == st.delivered + st.drops + (1 if st.frames > st.delivered + st.drops else 0)
    finally:
        cap.close()
    assert cap.stats().state is S.CLOSED


def test_reconnects_after_the_camera_restarts(cam: MjpegServer) -> None:
    cap = LiveCapture(fast(cam.url()), name="cam")
    try:
        before = take(cap, 5)
        assert len(before) == 5
        cam.stop()  # the camera vanishes: its stream ends, its port refuses connections
        assert cap.wait_for_state(S.BACKING_OFF, timeout=5)
        pause(2.0)  # a 2 s outage: several refused attempts, each followed by a back-off
        assert cap.stats().state in (S.BACKING_OFF, S.CONNECTING)
        cam.start()  # same port
        t_restart = time.monotonic()
        assert cap.wait_for_state(S.STREAMING, timeout=10)
        after = take(cap, 5)
        reconnect_s = time.monotonic() - t_restart
        assert len(after) == 5 and after[0].seq > before[-1].seq
        st = cap.stats()
        assert st.reconnects >= 1 and st.state is S.STREAMING
        assert is_subsequence([S.STREAMING, S.STALLED, S.BACKING_OFF, S.CONNECTING, S.STREAMING], state_sequence(cap))
        assert cam.connections == 2
        assert reconnect_s < 3.0  # back-off capped at 0.3 s here
    finally:
        cap.close()


def test_hung_camera_stalls_and_recovers(cam: MjpegServer) -> None:
    cap = LiveCapture(fast(cam.url()), name="cam")
    try:
        assert len(take(cap, 3)) == 3
        cam.freeze()  # connection open, no frames: only the read timeout notices
        assert cap.wait_for_state(S.STALLED, S.BACKING_OFF, timeout=5)
        cam.unfreeze()
        assert cap.wait_for_state(S.STREAMING, timeout=10)
        assert len(take(cap, 3)) == 3
        assert cap.stats().reconnects >= 1
    finally:
        cap.close()


def test_bad_url_fails_after_its_retries(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://bob:s3cretpw@127.0.0.1:{closed_port()}/x.mjpg"
    cap = LiveCapture(fast(url), name="nowhere")
    try:
        with pytest.raises(SourceError) as err:
            take(cap, 1, timeout=20)
        msg = str(err.value)
        assert "could not be opened after 3 attempts" in msg  # 1 try + max_retries=2
        assert "bob:***@127.0.0.1" in msg and "s3cretpw" not in msg
        st = cap.stats()
        assert st.state is S.FAILED and st.reconnects == 2 and st.error == msg
        assert cap.done
    finally:
        cap.close()
    assert cap.stats().state is S.FAILED  # close() keeps the reason visible


def test_one_failing_source_does_not_disturb_another(cam: MjpegServer) -> None:
    good = LiveCapture(fast(cam.url()), name="good")
    bad = LiveCapture(fast(f"http://127.0.0.1:{closed_port()}/x.mjpg"), name="bad")
    try:
        assert bad.wait_for_state(S.FAILED, timeout=20)
        assert len(take(good, 10)) == 10
        assert good.stats().state is S.STREAMING and good.stats().reconnects == 0
    finally:
        good.close()
        bad.close()


@pytest.mark.parametrize(("uri", "reason"), [("/nonexistent/clip.mp4", "no such file, folder or camera"),
                                             ("/dev/video99", "no such camera device")])
def test_missing_sources_fail_clearly(uri: str, reason: str) -> None:
    cap = LiveCapture(SourceSettings(uri, max_retries=0))
    try:
        with pytest.raises(SourceError, match=reason):
            take(cap, 1)
    finally:
        cap.close()


def test_overload_drops_oldest_and_latency_stays_bounded() -> None:
    with MjpegServer(fps=50) as cam:
        cap = LiveCapture(fast(cam.url()), name="cam")
        try:
            assert take(cap, 1)
            latencies = []
            for _ in range(50):  # the consumer needs 40 ms per frame: half the camera's rate
                item = cap.get_latest(timeout=2)
                assert item is not None
                latencies.append(time.time() - item.t_capture)
                pause(0.040)
            st = cap.stats()
        finally:
            cap.close()
    assert st.drops >= 30  # about one frame in two
    assert st.frames - st.delivered - st.drops in (0, 1)  # every frame delivered, dropped or pending
    assert statistics.median(latencies) < 0.040  # at most one camera frame period old, plus jitter
    assert max(latencies) < 0.25
    assert statistics.median(latencies[-15:]) < statistics.median(latencies[:15]) + 0.02  # does not grow


# ---------------------------------------------------------------------------------- files and folders

def test_realtime_file_delivers_its_frame_rate(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", frames=30, fps=30)
    cap = LiveCapture(SourceSettings(str(path), realtime=True))
    try:
        frames = take(cap, 100)
        assert cap.wait_for_state(S.ENDED, timeout=5) and cap.done
        assert cap.get_latest(timeout=1) is None
    finally:
        cap.close()
    assert len(frames) == 30 and cap.stats().drops == 0
    span = frames[-1].t_capture - frames[0].t_capture
    assert 29 / span == pytest.approx(30, rel=0.15)
    assert [round(f.pts_s, 3) for f in frames[:3]] == [0.0, 0.033, 0.067]


def test_looping_file_keeps_timestamps_increasing(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", frames=8, fps=50)
    cap = LiveCapture(SourceSettings(str(path), realtime=True, loop=True))
    try:
        frames = take(cap, 20)
        assert cap.stats().state is S.STREAMING
    finally:
        cap.close()
    assert len(frames) == 20
    pts = [f.pts_s for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert pts[-1] > 8 / 50  # went round at least once


def test_image_folder_slideshow(tmp_path: Path) -> None:
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    for i, color in enumerate(colors):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), np.full((48, 64, 3), color, np.uint8))
    (tmp_path / "01b.jpg").write_bytes(b"not a jpeg")  # skipped with a warning
    (tmp_path / "notes.txt").write_text("ignored")
    cap = LiveCapture(SourceSettings(str(tmp_path), slideshow_fps=20, loop=True))
    try:
        frames = take(cap, 7)
    finally:
        cap.close()
    seen = [tuple(int(v) for v in f.frame[0, 0]) for f in frames]
    assert seen == [colors[i % 3] for i in range(7)]
    span = frames[-1].t_capture - frames[0].t_capture
    assert span == pytest.approx(6 / 20, rel=0.2)  # the unreadable image takes no time slot
    assert [f.pts_s for f in frames[:3]] == pytest.approx([0.0, 0.05, 0.1])

    once = LiveCapture(SourceSettings(str(tmp_path), slideshow_fps=50, loop=False))
    try:
        assert len(take(once, 10)) == 3
        assert once.wait_for_state(S.ENDED, timeout=5)
    finally:
        once.close()


# ---------------------------------------------------------------------------------- fakes

class FakeReader:
    """Frames on demand; `hang` blocks read() until released (a driver without a timeout)."""

    def __init__(self, frames: int, hang: threading.Event | None = None) -> None:
        self.left = frames
        self.hang = hang

    def read(self) -> tuple[np.ndarray | None, float | None]:
        if self.left <= 0:
            if self.hang is not None:
                self.hang.wait(30)
            return None, None
        self.left -= 1
        pause(0.005)  # a 200 fps camera
        return np.zeros((4, 4, 3), np.uint8), None

    def release(self) -> None:
        pass


def test_hanging_driver_read_shows_as_stalled() -> None:
    release = threading.Event()
    opened = []

    def opener(source: SourceSettings, stop: threading.Event) -> FakeReader:
        opened.append(source.uri)
        return FakeReader(3, hang=release if len(opened) == 1 else None) if len(opened) == 1 else FakeReader(1000)

    cap = LiveCapture(SourceSettings("fake://cam", stall_timeout_s=0.3, backoff_initial_s=0.01), opener=opener)
    try:
        assert len(take(cap, 1)) == 1
        take(cap, 5, timeout=1.0)  # drains the 3 frames then times out against the hung read
        assert cap.stats().state is S.STALLED  # seen by the consumer although read() never returned
        release.set()
        assert cap.wait_for_state(S.STREAMING, timeout=5)
        assert len(opened) == 2
    finally:
        release.set()
        cap.close()


@pytest.mark.parametrize("retry_forever", [False, True])
def test_a_source_that_streamed_is_retried_forever_unless_told(retry_forever: bool) -> None:
    attempts = []
    sixth = threading.Event()

    def opener(source: SourceSettings, stop: threading.Event) -> FakeReader:
        attempts.append(source.uri)
        if len(attempts) >= 6:
            sixth.set()
        if len(attempts) == 1:
            return FakeReader(3)
        raise OSError("connection refused")

    opts = SourceSettings("fake://cam", max_retries=2, retry_forever=retry_forever, backoff_initial_s=0.01,
                          backoff_max_s=0.02)
    cap = LiveCapture(opts, opener=opener)
    try:
        if retry_forever:
            assert sixth.wait(10)
            assert cap.stats().state is not S.FAILED
        else:
            with pytest.raises(SourceError, match="connection refused; lost and not back after 2 reconnect attempts"):
                take(cap, 100)
    finally:
        cap.close()


def test_on_state_callback_and_close_during_backoff() -> None:
    seen: list[tuple[str, SourceState, SourceState]] = []

    def opener(source: SourceSettings, stop: threading.Event) -> FakeReader:
        raise OSError("refused")

    opts = SourceSettings("fake://cam", max_retries=100, backoff_initial_s=30, backoff_max_s=60)
    cap = LiveCapture(opts, name="c1", opener=opener, on_state=lambda *a: seen.append(a))
    assert cap.wait_for_state(S.BACKING_OFF, timeout=5)
    t0 = time.monotonic()
    cap.close()
    assert time.monotonic() - t0 < 2  # the 30 s back-off is interrupted
    assert seen[:1] == [("c1", S.CONNECTING, S.BACKING_OFF)]
    assert seen[-1][2] is S.CLOSED


def test_credentials_never_reach_logs_or_stats(cam: MjpegServer, caplog: pytest.LogCaptureFixture,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    good = LiveCapture(fast(cam.url(userinfo="alice:t0psecret")))
    bad = LiveCapture(fast(f"rtsp://alice:t0psecret@127.0.0.1:{closed_port()}/s?token=abc123"))
    try:
        assert take(good, 3)
        with pytest.raises(SourceError):
            take(bad, 1, timeout=20)
        cam.stop()
        assert good.wait_for_state(S.BACKING_OFF, timeout=5)
        texts = [str(good.stats()), str(bad.stats()), good.name, bad.name, caplog.text]
    finally:
        good.close()
        bad.close()
    texts.append(capfd.readouterr().err)
    for text in texts:
        assert "t0psecret" not in text and "abc123" not in text
    assert "alice:***@127.0.0.1" in caplog.text and "token=***" in caplog.text

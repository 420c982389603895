"""display sink: a clear one-line error without a screen; real windows under Xvfb when present."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidpipe.pipeline.errors import VidpipeError
from vidpipe.stages.outputs import display
from vidpipe.stages.outputs.display import NO_SCREEN, DisplaySink, DisplayUnavailable


def test_no_display_variables() -> None:
    with pytest.raises(DisplayUnavailable) as err:
        DisplaySink(environ={"PATH": os.environ.get("PATH", "")})
    assert str(err.value) == NO_SCREEN == "display sink needs a screen: set DISPLAY or disable display"
    assert isinstance(err.value, VidpipeError)


def test_unreachable_x_server_is_reported_not_fatal() -> None:
    if Path("/tmp/.X11-unix/X97").exists():
        pytest.skip("display :97 exists on this machine")
    env = {**os.environ, "DISPLAY": ":97"}
    env.pop("WAYLAND_DISPLAY", None)
    with pytest.raises(DisplayUnavailable) as err:  # OpenCV's Qt would abort this very process
        DisplaySink(environ=env)
    msg = str(err.value)
    assert msg.startswith(NO_SCREEN) and "\n" not in msg


def test_headless_opencv_build_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_implemented(*args: object) -> None:
        raise cv2.error("OpenCV(4.11.0) window.cpp:1301: error: (-2:Unspecified error) The function is not "
                        "implemented. Rebuild the library with Windows, GTK+ 2.x or Cocoa support.")

    monkeypatch.setattr(display, "probe_display", lambda *a: None)
    monkeypatch.setattr(cv2, "namedWindow", not_implemented)
    sink = DisplaySink(environ={"DISPLAY": ":0"})
    with pytest.raises(DisplayUnavailable, match=r"^display sink needs a screen: .*not implemented"):
        sink.show("cam", np.zeros((8, 8, 3), np.uint8))


@pytest.fixture
def xvfb() -> Iterator[str]:
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(write_fd), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()  # Xvfb writes its display number once it accepts clients
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_shows_windows_under_xvfb(xvfb: str) -> None:
    env = {**os.environ, "DISPLAY": xvfb}
    code = ("import numpy as np; from stages.outputs.display import DisplaySink; s = DisplaySink(); "
            "[s.show('cam', np.full((60, 80, 3), i, np.uint8)) for i in range(5)]; "
            "print(sorted(s.windows), s.quit_requested); s.close()")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[3], check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['vidpipe: cam'] False"

"""`display` sink: one cv2.imshow window per stream (off by default: live.display).

    sink = DisplaySink()          # raises DisplayUnavailable at once when there is no screen
    sink.show("cam1", annotated_frame)
    sink.close()

OpenCV's Qt build ABORTS the whole process when it cannot reach the X server (no exception to
catch), so the constructor first opens a window in a throw-away child process: if that dies,
vidpipe reports one line instead of dying. May block: the constructor up to `probe_timeout_s`;
show() for the 1 ms of cv2.waitKey that lets the window paint. Closing a window (or pressing
q / Esc in it) sets `quit_requested`; the caller decides what that stops.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import cv2
import numpy as np

from vidpipe.pipeline.errors import VidpipeError

NO_SCREEN = "display sink needs a screen: set DISPLAY or disable display"
QUIT_KEYS = (ord("q"), 27)  # q, Esc
_PROBE = "import cv2; cv2.namedWindow('vidpipe-probe'); cv2.waitKey(1); cv2.destroyAllWindows()"


class DisplayUnavailable(VidpipeError, RuntimeError):
    """No screen to show windows on (no DISPLAY/WAYLAND_DISPLAY, or OpenCV built without GUI)."""


def has_screen(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    # macOS and Windows always have a window server; X11/Wayland need their socket variable.
    return sys.platform in ("darwin", "win32") or bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def probe_display(environ: dict[str, str] | None = None, timeout_s: float = 15.0) -> None:
    """Raises DisplayUnavailable unless a child process can open an OpenCV window."""
    if not has_screen(environ):
        raise DisplayUnavailable(NO_SCREEN)
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], env=environ, capture_output=True,
                              text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise DisplayUnavailable(f"{NO_SCREEN} (opening a test window hung for {timeout_s:.0f} s)") from None
    if done.returncode != 0:
        raise DisplayUnavailable(f"{NO_SCREEN} ({_short(done.stderr) or f'exit status {done.returncode}'})")


class DisplaySink:
    """Shows frames in windows named `<prefix><stream>`. Use from ONE thread (HighGUI's rule)."""

    def __init__(self, prefix: str = "vidpipe: ", environ: dict[str, str] | None = None,
                 probe_timeout_s: float = 15.0) -> None:
        probe_display(environ, probe_timeout_s)
        self.prefix = prefix
        self.windows: set[str] = set()
        self.quit_requested = False

    def show(self, stream: str, frame: np.ndarray) -> None:
        name = self.prefix + stream
        try:
            if name not in self.windows:
                cv2.namedWindow(name, cv2.WINDOW_NORMAL)
                self.windows.add(name)
            elif cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1:
                self.quit_requested = True  # the user closed the window
                return
            cv2.imshow(name, frame)
            if cv2.waitKey(1) & 0xFF in QUIT_KEYS:
                self.quit_requested = True
        except cv2.error as e:
            # A headless OpenCV build ("The function is not implemented") lands here.
            raise DisplayUnavailable(f"{NO_SCREEN} ({_short(str(e))})") from None

    def close(self) -> None:
        if not self.windows:
            return
        with contextlib.suppress(cv2.error):  # windows already gone with their display
            for name in self.windows:
                cv2.destroyWindow(name)
            cv2.waitKey(1)  # lets HighGUI process the destroy events
        self.windows.clear()


def _short(text: str) -> str:
    """The telling part of an OpenCV/Qt error as one short line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if "error:" in ln or "could not connect" in ln or "not implemented" in ln:
            return ln.split("error:", 1)[-1].strip()[:160]
    return lines[0][:160] if lines else ""

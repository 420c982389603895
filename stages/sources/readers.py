"""How each kind of live source is read: cameras (V4L2), network streams (FFmpeg, with open and
read timeouts), image folders (a slideshow) and video files played like a camera.

`open_reader(source, stop)` picks the reader for a `SourceSettings`; LiveCapture
(stages.sources.capture) runs it on its capture thread and owns the state machine around it.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from vidpipe.pipeline.errors import SourceError
from vidpipe.pipeline.redact import mask_url, printable
from vidpipe.stages.config import SourceSettings
from vidpipe.stages.sources.files import upright

# FFmpeg's and OpenCV's own lines bypass logging (and so the masking): keep them quiet.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
import cv2

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
NO_IMAGES = f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the folder"
# FFmpeg's protocols a live stream comes over ("a+b" combines them, e.g. hls+http)
STREAM_SCHEMES = frozenset({"file", "ftp", "hls", "http", "https", "mmsh", "mmst", "rtmp", "rtmpe", "rtmps",
                            "rtmpt", "rtmpts", "rtp", "rtsp", "rtsps", "sftp", "srt", "srtp", "tcp", "tls",
                            "udp", "unix"})


class SourceEnded(Exception):
    """Raised by FrameReader.read() at the end of a finite source."""


class FrameReader(Protocol):
    def read(self) -> tuple[np.ndarray | None, float | None]:
        """(frame, pts_s): frame None = read failed (stall); pts None = use the capture clock."""
        ...

    def release(self) -> None: ...


def source_kind(uri: str) -> str:
    """"camera" (index or /dev/videoN), "url" (anything FFmpeg opens), "folder" or "file"."""
    if uri.isdigit() or uri.startswith("/dev/video"):
        return "camera"
    if "://" in uri:
        return "url"
    return "folder" if Path(uri).is_dir() else "file"


def never_opens(uri: str) -> str:
    """One line naming `uri` and why it can never open ("" when it may): a camera whose device is
    not there, a file that does not exist, a folder without images, a scheme FFmpeg reads no
    stream over. A mistake to say at once, not a source to retry; whether a stream's server
    answers, or a file holds video, only opening it tells."""
    kind = source_kind(uri)
    if kind == "camera":
        return _missing_camera(uri)
    if kind == "url":
        scheme = uri.split("://", 1)[0].lower()
        if set(scheme.split("+")) <= STREAM_SCHEMES:
            return ""
        return printable(f"{mask_url(uri)}: {scheme}:// is not a stream protocol (rtsp, http, rtmp, srt, udp...)")
    if kind == "folder":
        try:
            return "" if _images(Path(uri)) else f"{printable(uri)}: {NO_IMAGES}"
        except OSError as exc:
            return f"{printable(uri)}: cannot read the folder ({exc.strerror})"
    return "" if Path(uri).is_file() else f"{printable(uri)}: no such file, folder or camera"


def _missing_camera(uri: str) -> str:
    device = uri if uri.startswith("/dev/") else f"/dev/video{uri}"
    if os.path.exists(device):
        return ""
    present = sorted(glob.glob("/dev/video*"), key=lambda d: (len(d), d))
    here = f"cameras here: {', '.join(present)}" if present else "no camera on this machine"
    return f"camera {uri}: {device} does not exist ({here})"


class _CvReader:
    """A camera or network stream (pts from the capture clock); base of _FileReader."""

    def __init__(self, cap: cv2.VideoCapture) -> None:
        self.cap = cap

    def read(self) -> tuple[np.ndarray | None, float | None]:
        ok, frame = self.cap.read()
        return (frame if ok else None), None

    def release(self) -> None:
        self.cap.release()


class _FileReader(_CvReader):
    """A video file played like a camera: paced at its timestamps, optionally looping."""

    def __init__(self, path: str, options: SourceSettings, stop: threading.Event) -> None:
        super().__init__(_open_cv(path, cv2.CAP_FFMPEG, []))
        self.path, self.options, self.stop = path, options, stop
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 25.0
        self.offset_s = 0.0  # pts offset of the current pass (loops keep pts increasing)
        self.last_pts = -1.0
        self.t0 = time.monotonic()

    def read(self) -> tuple[np.ndarray | None, float | None]:
        ok, frame = self.cap.read()
        if not ok:
            if not self.options.loop or self.last_pts < 0:
                raise SourceEnded
            self.cap.release()
            self.cap = _open_cv(self.path, cv2.CAP_FFMPEG, [])
            self.offset_s = self.last_pts + 1.0 / self.fps
            ok, frame = self.cap.read()
            if not ok:
                raise SourceEnded
        pts = self.offset_s + self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        pts = max(pts, self.last_pts + 1e-6)  # containers without timestamps report 0
        self.last_pts = pts
        if self.options.realtime:
            self.stop.wait(max(0.0, self.t0 + pts - time.monotonic()))  # pacing, not synchronisation
        return frame, pts


class _SlideshowReader:
    """An image folder shown at `slideshow_fps`, in name order; unreadable images are skipped."""

    def __init__(self, folder: str, options: SourceSettings, stop: threading.Event) -> None:
        self.paths = _images(Path(folder))
        if not self.paths:
            raise SourceError(NO_IMAGES)
        self.options, self.stop = options, stop
        self.period = 1.0 / max(options.slideshow_fps, 1e-3)
        self.index = self.shown = 0
        self.t0 = time.monotonic()

    def read(self) -> tuple[np.ndarray | None, float | None]:
        for _ in range(len(self.paths)):
            i = self.index
            if i >= len(self.paths) and not self.options.loop:
                raise SourceEnded
            self.index += 1
            frame = cv2.imread(str(self.paths[i % len(self.paths)]), cv2.IMREAD_COLOR)
            if frame is None:
                log.warning("%s: not a readable image, skipped", self.paths[i % len(self.paths)])
                continue
            pts = self.shown * self.period  # a skipped image leaves no gap
            self.shown += 1
            self.stop.wait(max(0.0, self.t0 + pts - time.monotonic()))  # slideshow pacing
            return frame, pts
        raise SourceError("no readable image in the folder")

    def release(self) -> None:
        pass


def _images(folder: Path) -> list[Path]:
    """The images of a slideshow folder, in name order."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def _open_cv(target: str | int, api: int, params: list[int]) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(target, api, params)
    if not cap.isOpened():
        cap.release()
        raise SourceError("cannot open (refused, not found, timed out or not a video)")
    upright(cap)  # files and streams that carry a display matrix, as for labeling
    return cap


def open_reader(options: SourceSettings, stop: threading.Event) -> FrameReader:
    """The default opener: picks the backend from the uri (see source_kind)."""
    uri = options.uri
    kind = source_kind(uri)
    if kind == "camera":
        if not uri.isdigit() and not Path(uri).exists():
            raise SourceError("no such camera device")
        cap = _open_cv(int(uri) if uri.isdigit() else uri, cv2.CAP_V4L2, [])
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver queue would add frames of latency
        return _CvReader(cap)
    if kind == "url":
        # FFmpeg's interrupt callback bounds open() and every read(); its default is 30 s.
        ms = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(options.open_timeout_s * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(options.stall_timeout_s * 1000)]
        return _CvReader(_open_cv(uri, cv2.CAP_FFMPEG, ms))
    if kind == "folder":
        return _SlideshowReader(uri, options, stop)
    if not Path(uri).is_file():
        raise SourceError("no such file, folder or camera")
    return _FileReader(uri, options, stop)

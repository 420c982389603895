"""File source: decodes one video file with OpenCV straight into frame-ring slots.

    probe(path) in the main process -> run_file_source(...) in its own process:
    StreamStart, FrameRef 0..n-1 (block policy: waits for a free slot, never drops), StreamEnd

May block: on a free frame slot and on a full output queue (back-pressure). On stop_sources the
stream ends early with StreamEnd(error="interrupted"); on abort it returns at once.

FrameRefs go out SEND_BATCH at a time (one queue item, Channel.put_many): a file decodes faster
than a per-frame queue hop is cheap. Pending frames are sent before waiting for a free slot, so
a batch never holds the slots the rest of the graph needs to make progress.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.channels import Channel
from pipeline.errors import SourceError
from pipeline.shm import SlotRing
from pipeline.stage import StageContext
from stages.descriptors import FrameRef, StreamEnd, StreamStart

# FFmpeg's own messages (e.g. "Invalid NAL unit size") would be a wall of text for one bad file;
# vidpipe reports each problem as one line naming the file instead.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2

cv2.setLogLevel(2)  # errors only: no "[ WARN ] can't open" noise for files we report ourselves

log = logging.getLogger(__name__)

SEND_BATCH = 8  # FrameRefs per queue item (files only: they add up to 7 decode periods of latency)
# Up to this size one FFmpeg thread decodes faster than the card's 2000 fps, and FFmpeg's frame
# threads would only cost sync overhead and take the second core from the other stages (640x360 on
# 2 cores: +7% pipeline fps); bigger frames get OpenCV's default (a thread per core).
SINGLE_THREAD_MAX_PIXELS = 640 * 480

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".ts", ".mts", ".mpg", ".mpeg", ".wmv", ".flv")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    stream: str
    width: int
    height: int
    fps: float
    frame_count: int


def open_capture(path: str, threads: int = 0) -> cv2.VideoCapture:
    """`threads`: FFmpeg decoding threads, 0 = OpenCV's default (one per core)."""
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads] if threads > 0 else [])
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"{path}: not a readable video (unknown format or corrupt file)")
    return cap


def probe(path: str, stream: str) -> VideoInfo:
    """Open `path` and read its geometry; raises SourceError with a one-line message."""
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{path}: no such file")
    if p.stat().st_size == 0:
        raise SourceError(f"{path}: empty file (0 bytes)")
    cap = open_capture(path)
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            raise SourceError(f"{path}: no video stream")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    finally:
        cap.release()
    return VideoInfo(str(p), stream, width, height, fps, count)


def find_videos(inputs: list[str]) -> tuple[list[str], list[str]]:
    """Expand folders into their video files (sorted). Returns (paths, one-line errors)."""
    paths: list[str] = []
    errors: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
            if not found:
                errors.append(f"{item}: folder has no video files ({', '.join(VIDEO_EXTENSIONS[:4])}, ...)")
            paths.extend(found)
        elif p.exists():
            paths.append(str(p))
        else:
            errors.append(f"{item}: no such file or folder")
    return paths, errors


def run_file_source(ctx: StageContext, info: VideoInfo, frames: SlotRing, out: Channel) -> None:
    cap = open_capture(info.path, threads=1 if info.width * info.height <= SINGLE_THREAD_MAX_PIXELS else 0)
    sent = 0
    error = ""
    pending: list[FrameRef] = []
    try:
        out.put(StreamStart(info.stream, info.path, info.width, info.height, info.fps, info.frame_count, live=False))
        sent, error = _decode_all(ctx, cap, info, frames, out, pending)
        out.put_many(pending)  # the last, partial batch
    finally:
        cap.release()
    if not error and sent == 0:
        error = "no frame could be decoded (corrupt file?)"
    elif not error and info.frame_count and sent < info.frame_count - 1:
        error = f"decoded {sent} of {info.frame_count} frames: file truncated or its frame count is wrong"
    if error:
        ctx.report("source_error", stream=info.stream, message=f"{info.path}: {error}")
    out.put(StreamEnd(info.stream, sent, error))


def _decode_all(ctx: StageContext, cap: cv2.VideoCapture, info: VideoInfo, frames: SlotRing, out: Channel,
                pending: list[FrameRef]) -> tuple[int, str]:
    """Decodes into slots; FrameRefs collect in `pending` and go out in batches (the caller sends
    what is left)."""
    seq = 0
    while True:
        if ctx.stop_sources.is_set():
            return seq, "interrupted"
        slot = frames.acquire(timeout=0)
        if slot is None:  # the ring is full: send what we hold before waiting for the graph
            out.put_many(pending)
            pending.clear()
            slot = frames.acquire_or_abort(out.aborted)
        view = frames.view(slot, (info.height, info.width, 3))
        if not cap.grab():
            frames.release(slot)
            return seq, ""
        ok, image = cap.retrieve(view)
        if not ok or image is None:
            frames.release(slot)
            return seq, f"decode error after {seq} frames"
        if image is not view:  # geometry changed mid-stream: keep the declared size
            frames.release(slot)
            return seq, f"frame {seq} is {image.shape[1]}x{image.shape[0]}, expected {info.width}x{info.height}"
        pts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        pending.append(FrameRef(info.stream, seq, slot, info.height, info.width, pts, time.time()))
        if len(pending) >= SEND_BATCH:
            out.put_many(pending)
            pending.clear()
        seq += 1

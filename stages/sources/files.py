"""File source: decodes video files with OpenCV straight into frame-ring slots.

    find_videos(inputs), probe(path) in the main process -> FileQueue of VideoInfos
    -> FileSourceStage workers (a few long-lived processes), each taking the next file; per file:
    StreamStart, FrameRef 0..n-1 (block policy: waits for a free slot, never drops), StreamEnd;
    a long file may come as runs, decoded by several workers at once (stages.sources.runs): part 0
    sends the StreamStart, each part its frames and a PartEnd (the sink makes the StreamEnd)

May block: on the FileQueue, on a free frame slot and on a full output queue (back-pressure). On
stop_sources the stream under way ends early with StreamEnd(error="interrupted") and the worker
takes no more files; on abort it returns at once.

FrameRefs go out SEND_BATCH at a time (one queue item, Channel.put_many): a file decodes faster
than a per-frame queue hop is cheap. Pending frames are sent before waiting for a free slot, so
a batch never holds the slots the rest of the graph needs to make progress.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from vidpipe.pipeline.errors import SourceError
from vidpipe.pipeline.redact import printable
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.stage import Stage
from vidpipe.stages.descriptors import FrameRef, StreamEnd, StreamStart
from vidpipe.stages.events import SourceProblem, SourceWarning
from vidpipe.stages.parts import PartEnd, verdict
from vidpipe.stages.sources.damage import Damage, DecoderErrors
from vidpipe.stages.sources.orientation import Orientation, apply, mirrored_orientation

# FFmpeg's own messages (e.g. "Invalid NAL unit size") would be a wall of text for one bad file;
# vidpipe reports each problem as one line naming the file instead.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2
import numpy as np

from vidpipe.stages.sources.runs import VideoRun, grabbed

cv2.setLogLevel(2)  # errors only: no "[ WARN ] can't open" noise for files we report ourselves

log = logging.getLogger(__name__)

SEND_BATCH = 8  # FrameRefs per queue item (files only: they add up to 7 decode periods of latency)
# Up to this size one FFmpeg thread decodes faster than the card's 2000 fps, and FFmpeg's frame
# threads would only cost sync overhead and take the second core from the other stages (640x360 on
# 2 cores: +7% pipeline fps); bigger frames get OpenCV's default (a thread per core).
SINGLE_THREAD_MAX_PIXELS = 640 * 480
WAIT_S = 0.2  # a worker waiting for a file looks at Ctrl-C and abort this often

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".ts", ".mts", ".mpg", ".mpeg", ".wmv", ".flv")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    stream: str
    width: int
    height: int
    fps: float
    frame_count: int
    orient: Orientation | None = None  # a mirrored display matrix, applied here (OpenCV cannot)


def largest_frame_bytes(infos: list[VideoInfo]) -> int:
    """The bytes of the largest BGR frame among `infos` (sizes a frame ring)."""
    return max(i.width * i.height * 3 for i in infos)


def decode_size(info: VideoInfo) -> int:
    """A video's decode work (frames x pixels): the largest go first."""
    return info.frame_count * info.width * info.height


def open_capture(path: str, threads: int = 0) -> cv2.VideoCapture:
    """`threads`: FFmpeg decoding threads, 0 = OpenCV's default (one per core)."""
    params = [cv2.CAP_PROP_N_THREADS, threads] if threads > 0 else []
    try:
        path.encode("utf-8")
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, params)
    except UnicodeEncodeError:
        # A name that is not UTF-8 crashes OpenCV (a segfault, seen with 4.11): FFmpeg opens the
        # file through a descriptor of ours instead, which names it in plain ASCII.
        fd = os.open(path, os.O_RDONLY)
        try:
            cap = cv2.VideoCapture(f"/proc/self/fd/{fd}", cv2.CAP_FFMPEG, params)
        finally:
            os.close(fd)  # FFmpeg holds its own open file by now
    if not cap.isOpened():
        cap.release()
        message = f"{printable(path)}: not a readable video (unknown format or corrupt file)"
        raise SourceError(message, path=path)
    upright(cap)
    return cap


def upright(cap: cv2.VideoCapture) -> None:
    """Frames turned upright as the container's display matrix says (a portrait phone video is
    stored sideways): OpenCV does it when asked, and then reports the display size."""
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)


def probe(path: str, stream: str) -> VideoInfo:
    """Open `path` and read its geometry; raises SourceError with a one-line message."""
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{printable(path)}: no such file", path=path, stream=stream)
    if p.stat().st_size == 0:
        raise SourceError(f"{printable(path)}: empty file (0 bytes)", path=path, stream=stream)
    cap = open_capture(path)
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            raise SourceError(f"{printable(path)}: no video stream", path=path, stream=stream)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        orient = mirrored_orientation(path) if cap.get(cv2.CAP_PROP_ORIENTATION_META) else None
        if orient is not None:  # the display size is the stored one, turned by the matrix itself
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
            stored = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
            height, width = apply(orient, np.empty(stored, np.uint8)).shape
    finally:
        cap.release()
    return VideoInfo(str(p), stream, width, height, fps, count, orient)


def find_videos(inputs: list[str], skip: Callable[[Path], bool] | None = None) -> tuple[list[str], list[SourceError]]:
    """Expand folders into their video files (sorted; files for which `skip` says so, e.g.
    vidpipe's own outputs, are left out). A file given twice is labeled once.
    Returns (paths, one error per bad input)."""
    paths: list[str] = []
    errors: list[SourceError] = []
    seen: set[str] = set()
    folders: dict[str, str] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = _video_files(p)
            if not found:
                message = f"{printable(item)}: folder has no video files ({', '.join(VIDEO_EXTENSIONS[:4])}, ...)"
                errors.append(SourceError(message, path=item))
            candidates = [f for f in found if skip is None or not skip(f)]
        elif p.exists():
            candidates = [p]
        else:
            errors.append(SourceError(f"{printable(item)}: no such file or folder", path=item))
            continue
        for f in candidates:
            if (real := real_path(str(f), folders)) not in seen:
                seen.add(real)
                paths.append(str(f))
    return paths, errors


def _video_files(folder: Path) -> list[Path]:
    """The video files under `folder`, sorted, as rglob would find them (symbolic links to folders
    are not followed, unreadable folders are skipped), without a stat per file: a folder's
    entries say whether they are files."""
    found: list[Path] = []
    todo = [folder]
    while todo:
        try:
            with os.scandir(todo.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        todo.append(Path(entry.path))
                    elif os.path.splitext(entry.name)[1].lower() in VIDEO_EXTENSIONS and entry.is_file():
                        found.append(Path(entry.path))
        except OSError:
            continue
    return sorted(found)


def real_path(path: str, folders: dict[str, str]) -> str:
    """os.path.realpath(path), its folder resolved once per folder (`folders`: the cache): thousands
    of a job's files share a few folders, and a full resolve walks every component of each path."""
    head, name = os.path.split(path)
    folder = folders.get(head)
    if folder is None:
        folder = folders[head] = os.path.realpath(head or ".")
    real = os.path.join(folder, name)
    return os.path.realpath(real) if os.path.islink(real) else real


class FileQueue:
    """The job's files for its decode workers: a worker takes the next one when it is done with
    one, so a few long-lived processes decode any number of files (no interpreter start-up per
    file) and a long file never holds the short ones behind it.

        files = FileQueue(ctx); files.put(info)...; files.end(workers)    # the job (main process)
        files.get(timeout) -> VideoInfo, VideoRun (a run of a long file, stages.sources.runs),
                             or None: no more files for this worker (queue.Empty)

    It holds only the descriptors of the job's own files (the job holds them all anyway), so it
    needs no bound; it pickles (to a worker) only while the worker is spawned."""

    def __init__(self, ctx: BaseContext) -> None:
        self._q: Any = ctx.Queue()

    def put(self, item: VideoInfo | VideoRun) -> None:
        self._q.put(item)

    def end(self, workers: int) -> None:
        """No more files: one end marker per worker (watch never ends: its workers stop on Ctrl-C)."""
        for _ in range(workers):
            self._q.put(None)

    def get(self, timeout: float) -> VideoInfo | VideoRun | None:
        item: VideoInfo | VideoRun | None = self._q.get(timeout=timeout)
        return item

    def close(self) -> None:
        """After the graph (no worker left): files never taken (Ctrl-C, a failure) are read back
        up to a marker put last, so that the queue's feeder thread, blocked on a full pipe nobody
        else reads now, ends (a Ray worker's process lives on); the queue then closes without
        waiting for that thread at exit."""
        self._q.cancel_join_thread()
        self._q.put(_DRAINED)
        deadline = time.monotonic() + 10.0  # a worker killed inside get() may hold the read lock
        with contextlib.suppress(OSError, EOFError, ValueError):
            while time.monotonic() < deadline:
                try:
                    if self._q.get(timeout=0.5) == _DRAINED:
                        break
                except queue.Empty:
                    continue
        self._q.close()


_DRAINED = "vidpipe: the end of a closed FileQueue"


@dataclass(frozen=True)
class FileSourceParams:
    files: FileQueue
    frames: SlotRing
    max_damaged_share: float = 0.5  # more frames decoded with errors than this: the video fails


class FileSourceStage(Stage[FileSourceParams]):
    """A decode worker: the job's files one after the other, each decoded in order, until its
    FileQueue says there are no more (or Ctrl-C); see the module docstring. A file that cannot be
    opened or decoded ends its own stream with the error; the worker goes on with the next. A run
    of a file (stages.sources.runs) is decoded from its keyframe, the frames before it dropped."""

    cap: cv2.VideoCapture | None = None  # the file being decoded

    def open(self) -> None:
        self.errors = DecoderErrors.capture()  # before FFmpeg's first use in this process

    def close(self) -> None:
        self._release()
        if hasattr(self, "errors"):
            self.errors.close()

    def produce(self) -> None:
        while not self.stopping and (item := self._next()) is not None:
            if isinstance(item, VideoRun):
                self._label_run(item)
            else:
                self._label(item)

    def _next(self) -> VideoInfo | VideoRun | None:
        while True:
            try:
                return self.params.files.get(timeout=WAIT_S)
            except queue.Empty:
                self._check_aborted()
                if self.stopping:
                    return None

    def _label(self, info: VideoInfo) -> None:
        log.debug("%s: decoding in worker pid %d", info.stream, os.getpid())
        self._start(info)
        sent, error = self._decode(info, self._decode_all)
        if self.errors.drain():
            self.damage.add(max(0, sent - 1))  # reported at the end: the last frame's
        error, warning = verdict(sent, error, info.frame_count, self.damage.frames, self.params.max_damaged_share)
        if warning:
            self.report(SourceWarning(info.stream, info.path, warning))
        if error:
            self.report(SourceProblem(info.stream, info.path, f"{printable(info.path)}: {error}"))
        self.send(StreamEnd(info.stream, sent, error))

    def _label_run(self, run: VideoRun) -> None:
        """Frames run.start..run.end-1, numbered as the whole file; the sink puts the parts' ends
        together (stages.parts) and reports the video's problem."""
        info = run.info
        log.debug("%s: decoding frames %d..%d in worker pid %d", info.stream, run.start, run.end - 1, os.getpid())
        if run.part == 0:
            self._start(info)
        self.damage = Damage(info.path)
        sent, error = self._decode(info, lambda _: self._decode_run(run), threads=1)  # a core each run
        if self.errors.drain():
            self.damage.add(max(run.start, run.start + sent - 1))
        self.send(PartEnd(info.stream, run.part, run.parts, run.start, run.end - run.start, sent, error,
                          tuple(self.damage.frames), info.frame_count, self.params.max_damaged_share))

    def _start(self, info: VideoInfo) -> None:
        self.damage = Damage(info.path)
        self.send(StreamStart(info.stream, info.path, info.width, info.height, info.fps, info.frame_count, live=False))

    def _decode(self, info: VideoInfo, decode: Callable[[VideoInfo], tuple[int, str]],
                threads: int | None = None) -> tuple[int, str]:
        """Opens the file (`threads`: FFmpeg's, None: by the frame size), decodes with `decode`,
        releases it: (frames sent, error)."""
        try:
            self._open(info, threads)
            return decode(info)
        except SourceError as exc:  # changed or gone since it was planned
            return 0, str(exc).removeprefix(f"{printable(info.path)}: ")
        finally:
            self._release()
            self.flush()  # the last, partial batch

    def _open(self, info: VideoInfo, threads: int | None = None) -> None:
        if threads is None:
            threads = 1 if info.width * info.height <= SINGLE_THREAD_MAX_PIXELS else 0
        self.errors.drain()  # what an earlier file left is not this one's
        self.cap = open_capture(info.path, threads)
        if info.orient is not None:
            self.cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # turned here, as the matrix says (orientation)

    def _release(self) -> None:
        if self.cap is not None:
            self.cap.release()
        self.cap = None

    def _decode_all(self, info: VideoInfo) -> tuple[int, str]:
        """Decodes into slots; FrameRefs leave SEND_BATCH at a time. Returns (frames, error)."""
        cap = self.cap
        assert cap is not None
        seq = 0
        while True:
            if self.stopping:
                return seq, "interrupted"
            if not cap.grab():
                return seq, ""
            if error := self._send_frame(info, seq):
                return seq, error
            seq += 1

    def _decode_run(self, run: VideoRun) -> tuple[int, str]:
        """Frames start..end-1 of the run (stages.sources.runs.grabbed), the others dropped.
        Returns (frames, error)."""
        assert self.cap is not None
        seq = run.start
        for n, at in enumerate(grabbed(self.cap, run)):
            if n == 0:
                self.errors.drain()  # the seek decoded frames before the run: not its damage
            if self.stopping:
                return seq - run.start, "interrupted"
            if at is None or at > seq:
                return seq - run.start, f"frame {seq} is missing in the decoded video (corrupt file?)"
            if at < seq:  # before the start (or a leading B-frame of the next GOP): dropped
                self.errors.drain()
            elif error := self._send_frame(run.info, seq):
                return seq - run.start, error
            else:
                seq += 1
        return seq - run.start, ""

    def _send_frame(self, info: VideoInfo, seq: int) -> str:
        """The frame just grabbed into a slot, its FrameRef to send; an error, or ""."""
        frames, cap = self.params.frames, self.cap
        assert cap is not None
        slot = self.acquire(frames)
        view = frames.view(slot, (info.height, info.width, 3))
        ok, image = cap.retrieve(view) if info.orient is None else cap.retrieve()
        if not ok or image is None:
            frames.release(slot)
            return f"decode error after {seq} frames"
        if info.orient is not None:  # a mirrored display matrix: shown as it says
            image = apply(info.orient, image)
        if image is not view:
            if image.shape != view.shape:  # geometry changed mid-stream: keep the declared size
                frames.release(slot)
                return f"frame {seq} is {image.shape[1]}x{image.shape[0]}, expected {info.width}x{info.height}"
            view[...] = image  # turned upright: OpenCV (or the mirror) turns into a new array
        pts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        damaged = self.damage.frame(seq, self.errors.drain())
        self.emit(FrameRef(info.stream, seq, slot, info.height, info.width, pts, time.time(), damaged=damaged))
        if self.held >= SEND_BATCH:
            self.flush()
        return ""

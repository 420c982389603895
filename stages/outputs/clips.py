"""Event clips ("smart record"): an H.264 clip around each run of a watched label, per stream.

    every frame (JPEG, capture time, current label) --> ClipRecorder
        ring: the last `pre_s` seconds, at most one JPEG per 1/fps (bounded memory)
        watched label starts  --> a ClipWriter thread: the ring, then every new frame
        label gone for post_s --> the clip closes (or at max_s), `.part` renamed, a "clip" event

    OUTPUT/clips/STREAM_LABEL_20260101-120000.mp4   (label start, local time; -2... for a second one)

Clips are written at a constant `fps` on the wall clock: each output frame shows the newest
frame captured at or before its time (frames repeated or skipped), so a clip lasts as long as
what it shows. Frames travel as the JPEGs the live view made anyway; the writer thread decodes
and encodes them, off the sink's path, through a bounded queue (a full queue drops, counted).
A clip is `.part` until complete, then tagged CLIP_TAG in its own metadata: retention
(stages.outputs.retention) deletes old clips, never one being written.
May block: close() until the writer has finished its clip (encoding what is queued).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidpipe.stages.config import ClipSettings, OutputSettings
from vidpipe.stages.live_files import CLIPS
from vidpipe.stages.outputs.retention import CLIP_TAG
from vidpipe.stages.outputs.writers import H264Writer

log = logging.getLogger(__name__)

_END = None  # closes a writer's queue


class ClipWriter:
    """One clip being written by its own thread; see the module docstring."""

    def __init__(self, path: Path, fps: float, output: OutputSettings, on_done: Callable[[dict[str, Any]], None],
                 meta: dict[str, Any], queue_size: int) -> None:
        self.path, self.fps, self.output, self.on_done, self.meta = path, fps, output, on_done, meta
        self.queue: queue.Queue[tuple[float, bytes] | None] = queue.Queue(maxsize=queue_size)
        self.dropped = 0
        self.t_end = 0.0
        self._thread = threading.Thread(target=self._run, name=f"clip-{path.stem}", daemon=True)
        self._thread.start()

    def add(self, t: float, jpeg: bytes) -> None:
        try:
            self.queue.put_nowait((t, jpeg))
        except queue.Full:
            self.dropped += 1  # the encoder is behind: the clip repeats the previous frame there

    def finish(self, t_end: float) -> None:
        """Ends the clip at `t_end`; the thread encodes what is queued, then publishes it."""
        self.t_end = t_end
        self.queue.put(_END)  # blocks only while the writer takes one item off a full queue

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        writer: H264Writer | None = None
        last: np.ndarray | None = None
        t0 = tick = 0.0
        try:
            while (item := self.queue.get()) is not None:
                t, jpeg = item
                image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                if writer is None:
                    h, w = image.shape[:2]
                    writer = H264Writer(self.path, w, h, self.fps, preset="veryfast", crf=self.output.video_crf,
                                        metadata={"comment": CLIP_TAG})
                    t0 = tick = t
                elif image.shape[:2] != (writer.height, writer.width):
                    image = cv2.resize(image, (writer.width, writer.height))
                while last is not None and tick < t:  # the previous frame covers the time until this one
                    writer.write(last)
                    tick += 1.0 / self.fps
                last = image
            while writer is not None and last is not None and tick <= self.t_end:
                writer.write(last)
                tick += 1.0 / self.fps
        finally:
            if writer is not None:
                published = writer.close()
                frames = writer.frames
                self.on_done({**self.meta, "path": str(published or self.path), "start_time": round(t0, 3),
                              "end_time": round(t0 + frames / self.fps, 3), "frames": frames,
                              "duration_s": round(frames / self.fps, 3), "fps": self.fps,
                              "dropped": self.dropped})


class ClipRecorder:
    """One stream's clips; `frame()` is called by the sink for every frame of the stream."""

    def __init__(self, stream: str, settings: ClipSettings, output: OutputSettings,
                 emit: Callable[[dict[str, Any]], None]) -> None:
        self.stream, self.settings, self.output, self.emit = stream, settings, output, emit
        self.watched = set(settings.labels)
        self.dir = Path(output.dir) / CLIPS
        self.ring: deque[tuple[float, bytes]] = deque()
        self.writer: ClipWriter | None = None
        self.finishing: list[ClipWriter] = []  # ended, still encoding (joined by close())
        self.label = ""
        self.t_started = self.t_seen = 0.0

    def wants(self, t: float) -> bool:
        """Whether the frame captured at `t` is needed (so the caller encodes it only then)."""
        return bool(self.watched) and (not self.ring or t - self.ring[-1][0] >= 0.999 / self.settings.fps)

    def frame(self, t: float, jpeg: bytes | None, label: str | None) -> None:
        s = self.settings
        if jpeg is not None:
            self.ring.append((t, jpeg))
            while self.ring and self.ring[0][0] < t - s.pre_s:
                self.ring.popleft()
        watched = label in self.watched
        if watched:
            self.t_seen = t
        if self.writer is None:
            if watched and label is not None:
                self._start(t, label)
            return
        if jpeg is not None:
            self.writer.add(t, jpeg)
        if (not watched and t - self.t_seen >= s.post_s) or t - self.t_started >= s.max_s:
            self._finish(t)

    def _start(self, t: float, label: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.label, self.t_started = label, t
        name = f"{_safe(self.stream)}_{_safe(label)}_{time.strftime('%Y%m%d-%H%M%S', time.localtime(t))}"
        path = self.dir / f"{name}.mp4"
        n = 1
        while path.exists():
            n += 1
            path = self.dir / f"{name}-{n}.mp4"
        queue_size = int((self.settings.pre_s + 2.0) * self.settings.fps) + 4
        meta = {"type": "clip", "stream": self.stream, "label": label, "label_start_time": round(t, 3)}
        self.writer = ClipWriter(path, self.settings.fps, self.output, self._done, meta, queue_size)
        for item in self.ring:
            self.writer.add(*item)
        log.info("clip of %s: %s started", self.stream, label)

    def _finish(self, t: float) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.finish(t)
            self.finishing = [w for w in self.finishing if not w.done] + [writer]

    def _done(self, event: dict[str, Any]) -> None:
        log.info("clip of %s: %s (%.1f s)", self.stream, event["path"], event["duration_s"])
        self.emit(event)

    def close(self) -> None:
        """Finishes a clip still open (Ctrl-C, the stream ended): it stays playable."""
        self._finish(self.ring[-1][0] if self.ring else time.time())
        for writer in self.finishing:
            writer.join()
        self.finishing.clear()


def _safe(text: str) -> str:
    return re.sub(r"[^\w.-]+", "-", text).strip("-")[:40] or "x"

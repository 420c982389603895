"""Live sources: cameras, network streams, image folders and real-time files, with reconnects.

    cap = LiveCapture(SourceSettings("rtsp://user:pw@cam/stream", stall_timeout_s=5))
    while (item := cap.get_latest(timeout=0.5)) is not None or not cap.done:
        ...                                   # item: CapturedFrame(frame, pts_s, t_capture, seq)
    cap.close()

A capture THREAD reads continuously and keeps only the newest frame ("latest" policy): a frame
overwritten before the consumer took it is a counted drop, so what the consumer gets is never
older than one frame period plus its own delay. The thread runs the state machine

    connecting -> streaming -> stalled -> backing_off -> connecting ...   (failed / ended / closed)

`stalled` = no frame for `stall_timeout_s` or a failed read. A source that never delivered a frame
fails after `max_retries` retries (get_latest then raises SourceError); one that has streamed is
retried forever unless `retry_forever=False`. Every uri in a log line or in stats() is masked.

May block: get_latest() up to its timeout; close() up to the open/read timeout of a hung driver.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from vidpipe.pipeline.backoff import Backoff, BackoffPolicy
from vidpipe.pipeline.errors import SourceError
from vidpipe.pipeline.meters import RateMeter
from vidpipe.pipeline.redact import mask_url
from vidpipe.stages.config import SourceSettings
from vidpipe.stages.descriptors import FINAL_STATES, SourceState
from vidpipe.stages.sources.readers import FrameReader, SourceEnded, open_reader, source_kind

log = logging.getLogger(__name__)



class CapturedFrame(NamedTuple):
    frame: np.ndarray  # BGR uint8
    pts_s: float  # file/slideshow timestamp (monotonic across loops), else seconds since first frame
    t_capture: float  # time.time() when the frame was read
    seq: int  # capture sequence number, gaps = drops (the runtime numbers what it sends itself)


@dataclass(frozen=True)
class CaptureStats:
    name: str
    uri: str  # masked
    state: SourceState
    reconnects: int  # connect attempts after the first one
    frames: int  # frames read
    drops: int  # frames overwritten before the consumer took them
    delivered: int  # frames returned by get_latest()
    fps: float  # capture rate over the last fps_window_s
    error: str  # the last problem (masked), "" while streaming


Opener = Callable[[SourceSettings, threading.Event], FrameReader]


class LiveCapture:
    """One live source read by its own thread; see the module docstring.

    `on_state(name, old, new)` is called on every state change the capture thread makes (and for
    `closed`, from close()'s caller); a stall noticed by stats()/get_latest() while a driver read
    hangs shows in stats() only.
    """

    def __init__(self, source: SourceSettings, *, name: str = "",
                 opener: Opener | None = None, rng: random.Random | None = None,
                 on_state: Callable[[str, SourceState, SourceState], None] | None = None) -> None:
        self.uri = uri = source.uri
        self.display_uri = mask_url(uri)
        self.name = name or source.name or self.display_uri
        self.options = o = source
        self._opener = opener or open_reader
        # a slow slideshow is not a stalled one
        slow = 3.0 / o.slideshow_fps if opener is None and source_kind(uri) == "folder" else 0.0
        self._stall_s = max(o.stall_timeout_s, slow)
        self._backoff = Backoff(BackoffPolicy(o.backoff_initial_s, o.backoff_max_s, 2.0, o.backoff_jitter), rng)
        self._on_state = on_state
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._state = SourceState.CONNECTING
        self._history: deque[tuple[float, SourceState]] = deque([(time.monotonic(), self._state)], maxlen=256)
        self._latest: CapturedFrame | None = None
        self._frames = self._drops = self._delivered = self._attempts = self._failures = 0
        self._streamed, self._error = False, ""
        self._last_frame_t = self._t_first = 0.0
        self._rate = RateMeter(o.fps_window_s)
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.name}", daemon=True)
        self._thread.start()

    # -- consumer side

    def get_latest(self, timeout: float | None = None) -> CapturedFrame | None:
        """The newest frame not yet returned (waits up to `timeout`), or None on timeout or once
        the source is done. Raises SourceError when the source failed for good."""
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self._state in FINAL_STATES, timeout)
            item = self._latest
            if item is not None:
                self._latest = None
                self._delivered += 1
                return item
            self._check_stall()
            if self._state is SourceState.FAILED:
                raise SourceError(self._error)
            return None

    @property
    def done(self) -> bool:
        """No frame will come any more (ended, failed or closed) and none is pending."""
        with self._cond:
            return self._state in FINAL_STATES and self._latest is None

    def wait_for_state(self, *states: SourceState, timeout: float) -> bool:
        """Blocks until the state is one of `states` (or final); True if it is one of `states`."""
        with self._cond:
            self._cond.wait_for(lambda: self._state in states or self._state in FINAL_STATES, timeout)
            return self._state in states

    def transitions(self) -> list[tuple[float, SourceState]]:
        """(time.monotonic(), state) of the last 256 state changes, oldest first."""
        with self._cond:
            return list(self._history)

    def stats(self) -> CaptureStats:
        with self._cond:
            self._check_stall()
            return CaptureStats(self.name, self.display_uri, self._state, max(0, self._attempts - 1),
                                self._frames, self._drops, self._delivered, self._rate.rate(time.monotonic()),
                                self._error)

    def close(self, timeout: float | None = None) -> None:
        """Stops and joins the capture thread (a hung driver read can hold it up to its timeout)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        limit = timeout if timeout is not None else self.options.open_timeout_s + self.options.stall_timeout_s + 2
        self._thread.join(limit)
        if self._thread.is_alive():
            log.warning("source %s: capture thread still blocked in the driver after %.0f s", self.name, limit)
        self._set_state(SourceState.CLOSED)

    # -- capture thread

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                reader = self._connect()
                if reader is not None:
                    try:
                        if not self._pump(reader):
                            return
                    finally:
                        reader.release()
                if self._stop.is_set() or self._give_up():
                    return
                self._set_state(SourceState.BACKING_OFF)
                self._stop.wait(self._backoff.next_delay())  # back-off delay, interrupted by close()
        except Exception as e:  # a bug or an unexpected driver error: report it, never hang the consumer
            log.exception("source %s: capture thread crashed", self.name)
            self._fail(f"source {self.display_uri}: capture crashed: {mask_url(str(e))}")

    def _connect(self) -> FrameReader | None:
        self._set_state(SourceState.CONNECTING)
        with self._cond:
            self._attempts += 1
        try:
            return self._opener(self.options, self._stop)
        except (OSError, cv2.error, ValueError) as e:
            self._note_failure(mask_url(str(e)) or type(e).__name__)
            return None

    def _pump(self, reader: FrameReader) -> bool:
        """Reads until a failure (True: retry) or the end / close() (False)."""
        while not self._stop.is_set():
            try:
                frame, pts = reader.read()
            except SourceEnded:
                log.info("source %s: ended after %d frames", self.name, self._frames)
                self._set_state(SourceState.ENDED)
                return False
            if frame is None:
                self._note_failure("no frame (read failed or timed out)")
                self._set_state(SourceState.STALLED)
                return True
            self._publish(frame, pts)
        return False

    def _publish(self, frame: np.ndarray, pts: float | None) -> None:
        now, t_capture = time.monotonic(), time.time()
        with self._cond:
            if self._state is not SourceState.STREAMING:
                self._failures, self._streamed, self._error = 0, True, ""
                self._backoff.reset()
            if self._frames == 0:
                self._t_first = now
            if self._latest is not None:
                self._drops += 1  # the consumer is behind: keep only the newest frame
            pts = pts if pts is not None else now - self._t_first
            self._latest = CapturedFrame(frame, pts, t_capture, self._frames)
            self._frames += 1
            self._last_frame_t = now
            self._rate.tick(now)
            self._cond.notify_all()
        self._set_state(SourceState.STREAMING)

    def _note_failure(self, reason: str) -> None:
        with self._cond:
            self._failures += 1
            self._error = f"source {self.display_uri}: {reason}"
        log.warning("%s (attempt %d)", self._error, self._attempts)

    def _give_up(self) -> bool:
        o = self.options
        with self._cond:
            limited = not self._streamed or not o.retry_forever
            if not limited or self._failures <= o.max_retries:
                return False
            what = (f"lost and not back after {self._failures - 1} reconnect attempts" if self._streamed
                    else f"could not be opened after {self._attempts} attempts")
            msg = f"{self._error}; {what}"
        self._fail(msg)
        return True

    def _fail(self, msg: str) -> None:
        with self._cond:
            self._error = msg
        log.debug("%s", msg)  # the consumer's get_latest() raises it: its owner reports it, once
        self._set_state(SourceState.FAILED)

    def _set_state(self, new: SourceState) -> None:
        with self._cond:
            old = self._state
            if old is new or old in FINAL_STATES:
                return
            self._state = new
            self._history.append((time.monotonic(), new))
            self._cond.notify_all()
        # connecting <-> backing_off repeats during an outage; each failure is already a warning
        level = logging.DEBUG if new in (SourceState.CONNECTING, SourceState.BACKING_OFF) else logging.INFO
        log.log(level, "source %s: %s -> %s", self.name, old.value, new.value)
        if self._on_state is not None:
            self._on_state(self.name, old, new)

    def _check_stall(self) -> None:
        # Called with the lock held by consumers: a driver read that hangs without a timeout
        # still shows as `stalled` (the capture thread reconnects once the read returns).
        if (self._state is SourceState.STREAMING
                and time.monotonic() - self._last_frame_t > self._stall_s):
            self._state = SourceState.STALLED
            self._history.append((time.monotonic(), SourceState.STALLED))
            self._cond.notify_all()

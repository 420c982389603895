"""The outputs of live streams, in the sink process: live view, metrics, JSONL, recording, window.

One LiveView HTTP server (page, MJPEG per stream, /status.json, /metrics) and one Metrics
registry serve every stream; each stream gets a LiveStreamOutputs. The label drawn is the raw
top-3 of that very frame (no smoothing delay). A periodic one-line status goes to the log.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import IO, Any

import numpy as np

from stages.config import LiveSettings, OutputSettings
from stages.descriptors import LabelInfo, QueueDepths, Result, SourceState, SourceStatus, StreamEnd, StreamStart
from stages.events import OutputSummary
from stages.outputs.display import DisplaySink
from stages.outputs.overlay import draw_labels
from stages.outputs.records import FrameLabel
from stages.outputs.writers import H264Writer
from stages.web.liveview import LiveView
from stages.web.metrics import Metrics

log = logging.getLogger(__name__)

RECORD_FPS = 30.0  # live sources have no container frame rate; recordings are played at this rate


class LiveStreamOutputs:
    def __init__(self, start: StreamStart, names: tuple[str, ...], shared: LiveOutputsFactory) -> None:
        self.stream = start.stream
        self.names = names
        self.shared = shared
        live, out = shared.live, shared.output
        base = Path(out.dir) / start.stream
        # appended line by line (not .part + rename as for files): a live run has no end to wait for
        self.jsonl: IO[str] | None = Path(f"{base}.jsonl").open("a", buffering=1) if live.jsonl else None  # noqa: SIM115
        self.size = (start.width, start.height)
        self.recording = (
            H264Writer(
                Path(f"{base}.mp4"), start.width, start.height, RECORD_FPS, preset=out.video_preset, crf=out.video_crf
            )
            if live.record
            else None
        )

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> None:
        label = FrameLabel.from_result(result, self.names, t_sink)
        metrics = self.shared.metrics
        metrics.frame(self.stream, label.latency_ms / 1000.0)
        if self.jsonl is not None:
            self.jsonl.write(json.dumps(label.to_json(), separators=(",", ":")) + "\n")
        info = metrics.stream_info(self.stream)
        extra = f"{info['fps']:.0f} fps  {label.latency_ms:.0f} ms"
        draw_labels(frame, label.names, label.scores, stream_label=self.stream, extra=extra)
        self.shared.show(self.stream, frame, {**info, "label": label.names[0]})
        if self.recording is not None:
            self.recording.write(frame if frame.shape[1::-1] == self.size else _resize(frame, self.size))

    def drop(self, result: Result) -> None:
        self.shared.metrics.drop(self.stream, "stale")

    def finish(self, end: StreamEnd | None) -> OutputSummary:
        if self.jsonl is not None:
            self.jsonl.close()
        if self.recording is not None:
            self.recording.close(abort=end is None)
        return OutputSummary()


class LiveOutputsFactory:
    """Picklable: made in the main process; the server and window open in the sink process."""

    def __init__(self, live: LiveSettings, output: OutputSettings) -> None:
        self.live = live
        self.output = output
        self._view: LiveView | None = None
        self._metrics: Metrics | None = None
        self._display: DisplaySink | None = None
        self._t_status = time.monotonic()
        self._capture_drops: dict[str, int] = {}
        self._reconnects: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"live": self.live, "output": self.output}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["live"], state["output"])  # type: ignore[misc]

    @property
    def metrics(self) -> Metrics:
        if self._metrics is None:
            self._open()
        assert self._metrics is not None
        return self._metrics

    def _open(self) -> None:
        live = self.live
        self._metrics = Metrics()
        if live.http:
            self._view = LiveView(live.http_host, live.http_port, registry=self._metrics.registry).start()
            log.info("live view on %s", self._view.url)
        if live.display:
            self._display = DisplaySink()

    def __call__(self, start: StreamStart, labels: LabelInfo) -> LiveStreamOutputs:
        self.metrics.set_state(start.stream, SourceState.STREAMING.value)
        return LiveStreamOutputs(start, labels.display_names(), self)

    def show(self, stream: str, frame: np.ndarray, info: dict[str, Any]) -> None:
        if self._view is not None:
            self._view.publish(stream, frame, info)
        if self._display is not None:
            self._display.show(stream, frame)
        self._maybe_log_status()

    def on_item(self, item: Any) -> None:
        if isinstance(item, SourceStatus):
            self._on_status(item)
        elif isinstance(item, QueueDepths):
            for name, depth in item.items():
                self.metrics.set_queue_depth(name, depth)
        self._maybe_log_status()

    def _on_status(self, s: SourceStatus) -> None:
        m = self.metrics
        m.set_state(s.stream, s.state.value)
        # counters only go up: add what is new since the last report
        m.drop(s.stream, "capture", max(0, s.capture_drops - self._capture_drops.get(s.stream, 0)))
        m.reconnect(s.stream, max(0, s.reconnects - self._reconnects.get(s.stream, 0)))
        self._capture_drops[s.stream], self._reconnects[s.stream] = s.capture_drops, s.reconnects
        # a source that is not streaming shows its state (and error) on the page
        if self._view is not None and (s.state is not SourceState.STREAMING or not self._view.has_stream(s.stream)):
            self._view.publish(s.stream, None, {**m.stream_info(s.stream), "error": s.error})

    def _maybe_log_status(self) -> None:
        interval = self.live.status_interval_s
        if interval > 0 and time.monotonic() - self._t_status >= interval:
            self._t_status = time.monotonic()
            log.info("status: %s", self.metrics.status_line())

    def close(self) -> None:
        if self._view is not None:
            self._view.close()
        if self._display is not None:
            self._display.close()


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(frame, size)

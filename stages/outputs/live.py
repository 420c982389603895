"""The outputs of live streams, in the sink process: live view and its API, metrics, JSONL, label
events, event clips, recording, window.

One LiveView HTTP server (page, MJPEG per stream, /status.json, /metrics, /api/streams), one
Metrics registry, one EventOutputs (events.START.jsonl, webhook, MQTT) serve every stream; each stream
gets a LiveStreamOutputs. The label drawn is the raw top-3 of that very frame (no smoothing
delay); label events and clips follow the smoothed top-1 (stages.outputs.events). A periodic
one-line status goes to the log. JSONL lines carry the run id and the wall clock
(stages.outputs.live_records); the recording keeps the source's timing (variable frame rate)
and survives crashes (stages.outputs.recording).

The API's requests go to the job in the main process over the control link (stages.web.control),
which also brings notices (restarted stages) back. A stream removed over the API leaves the page,
/status.json and /metrics once its source has ended it (its outputs are finalized first).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vidpipe.pipeline.events import Event
from vidpipe.pipeline.recovery import StageRestarted
from vidpipe.stages.config import LiveSettings, OutputSettings
from vidpipe.stages.descriptors import (
    FINAL_STATES,
    InferStats,
    LabelInfo,
    QueueDepths,
    Result,
    SourceState,
    SourceStatus,
    StreamEnd,
    StreamStart,
)
from vidpipe.stages.events import OutputSummary
from vidpipe.stages.outputs.builtin import FrameReporter
from vidpipe.stages.outputs.clips import ClipRecorder
from vidpipe.stages.outputs.display import DisplaySink
from vidpipe.stages.outputs.events import EventOutputs, LabelEvents
from vidpipe.stages.outputs.live_records import LiveJsonl, RecordClock, RunInfo
from vidpipe.stages.outputs.live_sink import FramesLost
from vidpipe.stages.outputs.overlay import draw_labels
from vidpipe.stages.outputs.recording import SegmentedRecording
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.retention import Retention
from vidpipe.stages.outputs.timeline import TimelineWriter, save_snapshot
from vidpipe.stages.sink import Lane
from vidpipe.stages.web.access import settle_access
from vidpipe.stages.web.api import StreamsApi
from vidpipe.stages.web.console import Console
from vidpipe.stages.web.control import ControlClient
from vidpipe.stages.web.liveview import LiveView, encode_jpeg
from vidpipe.stages.web.metrics import Metrics

log = logging.getLogger(__name__)



def _no_report(event: Event) -> None:
    """Before the sink binds its report: nobody to tell."""


class LiveStreamOutputs:
    def __init__(self, start: StreamStart, names: tuple[str, ...], shared: LiveOutputsFactory) -> None:
        self.stream = start.stream
        self.names = names
        self.shared = shared
        live, out = shared.live, shared.output
        folder = Path(out.dir)
        # a pass over the folder with each new file and every minute, off the frames' path
        self.retention = (Retention(folder, live.record_keep_s, round(live.max_disk_gb * 1e9))
                          if live.record_keep_s or live.max_disk_gb else None)
        new_file = self.retention.ask if self.retention is not None else None
        # appended line by line (not .part + rename as for files): a live run has no end to wait for
        self.jsonl = (LiveJsonl(folder, start.stream, shared.run.run_id, live.record_segment_s, new_file)
                      if live.jsonl else None)
        self.size = (start.width, start.height)
        self.clock = RecordClock()
        # label events wait for their frame's picture (a snapshot in OUT/snapshots/, named in the event)
        self._pending: list[dict[str, Any]] = []
        self.snapshots = live.events.jsonl
        self.events = LabelEvents(start.stream, live.events, self._pending.append)
        self.timeline = TimelineWriter(folder, start.stream, shared.run.run_id, live.record_segment_s) \
            if live.jsonl else None
        self.results = FrameReporter(shared.report) if live.report_frames else None
        self.clips = ClipRecorder(start.stream, live.clips, out, shared.emit) if live.clips.labels else None
        self.recording = (
            SegmentedRecording(folder, start.stream, self.size, out, live.record_segment_s, new_file)
            if live.record
            else None
        )

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> None:
        label = FrameLabel.from_result(result, self.names, t_sink)
        metrics = self.shared.metrics
        metrics.frame(self.stream, label.latency_ms / 1000.0, stage_ms=label.timings_ms)
        if self.jsonl is not None:
            self.jsonl.write(label, result.frame.t_capture)
        if self.results is not None:
            self.results.add(label)
        current = self.events.frame(label, result.frame.t_capture)
        if self.timeline is not None:
            self.timeline.add(result.frame.t_capture, label.names[0], None if label.scores is None else label.scores[0])
        info = metrics.stream_info(self.stream)
        extra = f"{info['fps']:.0f} fps  {label.latency_ms:.0f} ms"
        draw_labels(frame, label.names, label.scores, stream_label=self.stream, extra=extra)
        t = result.frame.t_capture
        clip = self.clips is not None and self.clips.wants(t)
        # one JPEG serves the page and the clip ring
        wanted = clip or self.shared.web or (self._pending and self.snapshots)
        jpeg = encode_jpeg(frame, self.shared.live.clips.jpeg_quality) if wanted else None
        self._emit_pending(jpeg)
        score = None if label.scores is None else round(label.scores[0], 3)
        self.shared.show(self.stream, frame, jpeg, {**info, "label": label.names[0], "score": score})
        if self.clips is not None:
            self.clips.frame(t, jpeg if clip else None, current)
        if self.recording is not None:
            image = frame if frame.shape[1::-1] == self.size else _resize(frame, self.size)
            self.recording.write(image, self.clock(result.frame.pts_s, t), t)
        if self.retention is not None:
            self.retention.poll()

    def _emit_pending(self, jpeg: bytes | None) -> None:
        for event in self._pending:
            if event.get("type") == "label" and jpeg is not None and self.snapshots:
                with contextlib.suppress(OSError):  # a full disk: the event goes out without its picture
                    event = {**event, "snapshot": save_snapshot(Path(self.shared.output.dir), self.stream,
                                                                event["time"], jpeg)}
            self.shared.emit(event)
        self._pending.clear()

    def drop(self, result: Result) -> None:
        self.shared.metrics.drop(self.stream, result.frame.drop_reason or "stale")

    def finish(self, end: StreamEnd | None) -> OutputSummary:
        frames = self.shared.metrics.stream_info(self.stream)["frames"]
        drops = self.shared.metrics.drops_by_reason(self.stream)
        # one line a script can read: the JSON object of drops by reason
        log.info("%s: %d frames labeled; drops by reason: %s", self.stream, frames, json.dumps(drops))
        # every file is closed even when closing another one fails (a full disk): an open
        # descriptor would keep a deleted file's space taken
        with contextlib.ExitStack() as closing:
            closing.callback(self.shared.finished, self.stream)
            if self.retention is not None:
                closing.callback(self.retention.close)
            if self.recording is not None:
                closing.callback(self.recording.close, abort=end is None)
            if self.clips is not None:
                closing.callback(self.clips.close)
            if self.jsonl is not None:
                closing.callback(self.jsonl.close)
            if self.timeline is not None:
                closing.callback(self.timeline.close)
            if self.results is not None:
                closing.callback(self.results.flush)
        return OutputSummary()


class LiveOutputsFactory:
    """Picklable: made in the main process; the server, window and receivers open in the sink
    process. `control` is the sink's end of the control link (None: no API)."""

    stream_outputs: ClassVar[type[LiveStreamOutputs]] = LiveStreamOutputs  # what each stream gets

    def __init__(self, live: LiveSettings, output: OutputSettings, control: Any = None,
                 run: RunInfo | None = None) -> None:
        self.live = live
        self.output = output
        self.control = control
        self.run = run or RunInfo()
        self._view: LiveView | None = None
        self._metrics: Metrics | None = None
        self._display: DisplaySink | None = None
        self._events: EventOutputs | None = None
        self._client: ControlClient | None = None
        self._removed: set[str] = set()  # deleted over the API, still finishing
        self._open_streams: set[str] = set()  # with outputs made and not finished
        self._t_status = time.monotonic()
        self._capture_drops: dict[str, int] = {}
        self._reconnects: dict[str, int] = {}
        self.report: Callable[[Event], None] = _no_report  # the sink's (bind)
        self._removal = threading.Lock()  # the sink thread and the API's HTTP threads
        self._finished: set[str] = set()  # streams whose outputs were made and are finished
        self._gone: set[str] = set()  # removed and forgotten: a late final status must not bring one back

    def __getstate__(self) -> dict[str, Any]:
        return {"live": self.live, "output": self.output, "control": self.control, "run": self.run}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["live"], state["output"], state["control"], state["run"])  # type: ignore[misc]

    def bind(self, report: Callable[[Event], None]) -> None:
        """The sink's report: frames' labels and label events for the Python API."""
        self.report = report

    @property
    def metrics(self) -> Metrics:
        if self._metrics is None:
            self._open()
        assert self._metrics is not None
        return self._metrics

    @property
    def web(self) -> bool:
        return self._view is not None

    def _open(self) -> None:
        live = self.live
        self._metrics = metrics = Metrics()
        metrics.describe_run(self.run.build, self.run.stages, self.run.infers)
        self._events = self._event_outputs(metrics)
        api = None
        if self.control is not None:
            self._client = ControlClient(self.control, self._on_notice)
            api = StreamsApi(self._client.request, self._describe, self._on_removed)
        if live.http:
            access = settle_access(live, self.output.dir, announce=False)  # the job logged it at start
            console = Console(Path(self.output.dir), live.record_keep_s, live.max_disk_gb)
            self._view = LiveView(live.http_host, live.http_port, registry=metrics.registry, api=api,
                                  status_extra=self._status_extra, guard=access.guard, tls=access.tls,
                                  console=console).start()
            log.info("live view on %s", self._view.url)
        if live.display:
            self._display = DisplaySink()

    def _event_outputs(self, metrics: Metrics) -> EventOutputs:
        """Where label events go: the configured senders (a Ray node's graph relays them instead)."""
        live = self.live
        return EventOutputs(live.events, Path(self.output.dir), metrics, self.run.run_id, self.report,
                            live.report_events, segment_s=live.record_segment_s)

    def _status_extra(self) -> dict[str, Any]:  # HTTP thread: more keys for /status.json
        return {"run": self.run.run_id, **self.metrics.counts()}

    def __call__(self, start: StreamStart, labels: LabelInfo, lane: Lane | None = None) -> LiveStreamOutputs:
        self._finished.discard(start.stream)
        self._gone.discard(start.stream)
        self.metrics.add_stream(start.stream, f"source:{start.stream}")
        self.metrics.set_state(start.stream, SourceState.STREAMING.value)
        self._open_streams.add(start.stream)
        return self.stream_outputs(start, labels.display_names(), self)

    def emit(self, event: dict[str, Any]) -> None:
        if self._events is not None:
            self._events.emit(event)
        if event.get("type") == "clip":
            self.metrics.clip(event["stream"])

    def show(self, stream: str, frame: np.ndarray, jpeg: bytes | None, info: dict[str, Any]) -> None:
        if self._view is not None:
            self._view.publish(stream, jpeg if jpeg is not None else frame, info)
        if self._display is not None:
            self._display.show(stream, frame)
        self._maybe_log_status()

    def finished(self, stream: str) -> None:
        """A stream's outputs are closed; one removed over the API leaves the page and /metrics."""
        with self._removal:
            self._open_streams.discard(stream)
            self._finished.add(stream)
            if stream in self._removed:
                self._forget(stream)

    def _on_removed(self, stream: str) -> None:
        """HTTP thread, once the job removed `stream`: its outputs may have finished already (the
        source can end before the API's reply is back), then it leaves the page now."""
        with self._removal:
            self._removed.add(stream)
            if stream in self._finished:
                self._forget(stream)

    def _forget(self, stream: str) -> None:
        self._removed.discard(stream)
        self._gone.add(stream)
        if self._view is not None:
            self._view.remove(stream)
        self.metrics.remove(stream)
        self._capture_drops.pop(stream, None)
        self._reconnects.pop(stream, None)

    def on_item(self, item: Any) -> None:
        if isinstance(item, SourceStatus):
            self._on_status(item)
        elif isinstance(item, QueueDepths):
            for name, depth in item.items():
                self.metrics.set_queue_depth(name, depth)
        elif isinstance(item, FramesLost):
            self.metrics.drop(item.stream, "lost", item.count)
        elif isinstance(item, InferStats):
            self.metrics.infer_stats(item)
        elif isinstance(item, StageRestarted):  # a restarted sink's: the restarts before it
            self._on_notice(item)
        self._maybe_log_status()

    def _on_notice(self, event: Any) -> None:  # control link thread
        if isinstance(event, StageRestarted):
            self.metrics.restart(event.stage)

    def _describe(self, stream: str) -> dict[str, Any]:  # HTTP thread: what the sink knows of a stream
        if stream not in self.metrics.streams():
            return {"state": "starting"}
        return self.metrics.stream_info(stream)

    def _on_status(self, s: SourceStatus) -> None:
        m = self.metrics
        if s.stream in self._gone:
            if s.state in FINAL_STATES:
                return  # the removed source's last report, after its outputs were forgotten
            self._gone.discard(s.stream)  # a new source of that name
        if s.stream in self._removed and s.state in FINAL_STATES:
            if s.stream not in self._open_streams:
                self._forget(s.stream)  # removed before its first frame: no outputs to finish
            return  # else its StreamEnd follows and finished() forgets it
        m.add_stream(s.stream, f"source:{s.stream}")  # its series exported at 0 from the first report
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
        if self._client is not None:
            self._client.close()
        if self._events is not None:
            self._events.close()
        if self._display is not None:
            self._display.close()


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(frame, size)

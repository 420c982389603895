"""Label events of live streams: what changed, when, sent to every configured receiver.

    per frame: FrameLabel --LabelEvents (causal LabelSmoother vote)--> {"type": "label", ...} on a change
                                                                    --> {"type": "result", ...} at results_hz
    EventOutputs.emit(event) --> every sender (stages.outputs.senders, by name): OUTPUT/events.START.jsonl
                                 (one line each, segments as the streams' JSONL), webhook and MQTT
                                 (stages.outputs.notify: own thread, bounded), the Python API's on_event,
                                 plug-ins

A label event:

    {"type": "label", "stream": "cam1", "label": "tabby", "score": 0.71, "previous": "espresso",
     "time": 1767268800.123, "time_iso": "2026-01-01T12:00:00.123+00:00", "stream_time_s": 12.4,
     "frame": 310}

`time` is the wall clock at capture of the frame where the new label won the vote, `stream_time_s`
the stream's own clock (file position, or seconds since the stream started), `previous` is null for
a stream's first label. Every event also carries `run`, the run id (stages.outputs.live_records):
each run starts a new events segment (`events.20260101T120000Z.jsonl`, START its first event's
UTC time), and so does every `segment_s` of wall time. Clip events (stages.outputs.clips) go
through the same emit().
Thread-safe: emit() is called by the sink and by clip writer threads; it never blocks on a receiver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidpipe.pipeline.errors import one_line
from vidpipe.pipeline.events import Event
from vidpipe.stages.config import EventSettings
from vidpipe.stages.outputs.live_records import iso
from vidpipe.stages.outputs.notify import Sender
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.senders import SenderContext, make_senders
from vidpipe.stages.outputs.smoothing import LabelSmoother
from vidpipe.stages.web.metrics import Metrics

log = logging.getLogger(__name__)


class LabelEvents:
    """One stream's label tracker: `frame()` returns the current (smoothed) label and emits the
    label-change and rate-limited result events."""

    def __init__(self, stream: str, settings: EventSettings, emit: Any) -> None:
        self.stream = stream
        self.emit = emit
        self.smoother = LabelSmoother(max(1, settings.smoothing_window), centered=False)
        self.period_s = 1.0 / settings.results_hz if settings.results_hz > 0 else 0.0
        self.current: str | None = None
        self.t_result = float("-inf")

    def frame(self, label: FrameLabel, t_capture: float) -> str | None:
        for smoothed in self.smoother.push(label):
            if smoothed.name != self.current:
                self.emit({"type": "label", "stream": self.stream, "label": smoothed.name,
                           "score": round(smoothed.score, 4), "previous": self.current,
                           "time": round(t_capture, 3), "time_iso": iso(t_capture),
                           "stream_time_s": round(label.timestamp_s, 3), "frame": label.index})
                self.current = smoothed.name
        if self.period_s and t_capture - self.t_result >= self.period_s:
            self.t_result = t_capture
            self.emit({"type": "result", "stream": self.stream, "frame": label.index,
                       "time": round(t_capture, 3), "stream_time_s": round(label.timestamp_s, 3),
                       **{k: v for k, v in label.to_json().items() if k in ("top5", "names", "scores", "latency_ms")}})
        return self.current


class EventOutputs:
    """Every receiver of one live run (stages.outputs.senders: composed from the settings by name);
    see the module docstring."""

    def __init__(self, settings: EventSettings, out_dir: Path, metrics: Metrics, run_id: str = "",
                 report: Callable[[Event], None] | None = None, report_events: bool = False,
                 segment_s: float = SenderContext.segment_s) -> None:
        self.settings = settings
        self.metrics = metrics
        self.run_id = run_id
        context = SenderContext(settings, metrics, out_dir, report or _nobody, {}, report_events, segment_s)
        self._senders = make_senders(context)
        for sender in self._senders:
            if isinstance(sender, Sender):  # the ones with a queue: their outcomes are counted
                metrics.add_event_sink(sender.name)

    def emit(self, event: dict[str, Any]) -> None:
        if self.run_id:
            event = {**event, "run": self.run_id}
        for sender in self._senders:
            sender.offer(event)

    def close(self) -> None:
        """Every sender is closed; one that fails to (a plug-in's bug) is one line, not a failed sink."""
        for sender in self._senders:
            try:
                sender.close()
            except Exception as exc:
                log.error("events to %s: closing failed: %s", sender.name, one_line(exc))
        self._senders.clear()


def _nobody(event: Event) -> None:
    """No main process to tell (outputs made outside a sink)."""

"""Where live label events go, by name: composed from config (stages.outputs.events uses them).

    events.jsonl  `jsonl`    OUT/events.START.jsonl segments                live.events.jsonl
    webhook       `webhook`  each event POSTed as JSON, retried              live.events.webhook
    MQTT          `mqtt`     each event on PREFIX/STREAM (paho-mqtt)         live.events.mqtt
    the caller    `python`   each event to the Python API's on_event         live.report_events
    plug-ins      any name   `live.events.extra: {NAME: {its options}}`      entry points `vidpipe.senders`

A sender is what `SenderSpec.create(context)` returns: `offer(event)` (never blocks: a bounded
queue and its own thread, as stages.outputs.notify.Sender does) and `close()`. A new one is one
module defining a SenderSpec plus one registration (a line in BUILTIN, or an entry point).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from vidpipe.pipeline.config import from_mapping
from vidpipe.pipeline.errors import ConfigError
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.registry import Registry
from vidpipe.stages.config import EventSettings, LiveSettings
from vidpipe.stages.events import LiveEvent
from vidpipe.stages.outputs.live_records import SegmentedJsonl
from vidpipe.stages.web.metrics import Metrics

OptionsT = TypeVar("OptionsT")


class EventSender(Protocol):
    name: str

    def offer(self, event: dict[str, Any]) -> None:
        """Take `event` for delivery; never blocks."""

    def close(self, grace_s: float = 2.0) -> None: ...


@dataclass(frozen=True)
class SenderContext:
    """What a sender is made from, in the sink process."""

    settings: EventSettings
    metrics: Metrics
    out_dir: Path
    report: Callable[[Event], None]  # a typed event to the main process
    options: dict[str, Any]  # `live.events.extra[NAME]` (plug-ins)
    report_events: bool = False
    segment_s: float = LiveSettings.record_segment_s  # events.jsonl: a new segment this often

    def options_as(self, cls: type[OptionsT]) -> OptionsT:
        return from_mapping(cls, self.options, "config", "live.events.extra")


@dataclass(frozen=True)
class SenderSpec:
    name: str
    summary: str
    create: Callable[[SenderContext], EventSender]
    # built-ins: whether the settings turn it on; None: when live.events.extra names it (plug-ins)
    enabled: Callable[[SenderContext], bool] | None = None
    options: type | None = None  # the frozen dataclass its live.events.extra entry is read into


class JsonlSender:
    """OUT/events.START.jsonl, one line per event (line buffered: never a torn line), a new segment
    every `segment_s` of wall time and with each run (stages.outputs.live_records)."""

    name = "jsonl"

    def __init__(self, out_dir: Path, segment_s: float) -> None:
        self._lock = threading.Lock()
        self._file: SegmentedJsonl | None = SegmentedJsonl(out_dir, "events", segment_s)

    def offer(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(line, time.time())

    def close(self, grace_s: float = 2.0) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class CallerSender:
    """Each event to the main process, where the Python API hands it to `on_event`."""

    name = "python"

    def __init__(self, report: Callable[[Event], None]) -> None:
        self.report = report

    def offer(self, event: dict[str, Any]) -> None:
        self.report(LiveEvent(str(event.get("type", "")), str(event.get("stream", "")), event))

    def close(self, grace_s: float = 2.0) -> None:
        pass


def _webhook(context: SenderContext) -> EventSender:
    from vidpipe.stages.outputs.notify import WebhookSender

    return WebhookSender(context.settings, context.metrics).start()


def _mqtt(context: SenderContext) -> EventSender:
    from vidpipe.stages.outputs.notify import MqttSender

    return MqttSender(context.settings, context.metrics).start()


JSONL = SenderSpec("jsonl", "OUT/events.START.jsonl", lambda c: JsonlSender(c.out_dir, c.segment_s),
                  lambda c: c.settings.jsonl)
WEBHOOK = SenderSpec("webhook", "JSON POST to live.events.webhook", _webhook, lambda c: bool(c.settings.webhook))
MQTT = SenderSpec("mqtt", "MQTT publish to live.events.mqtt", _mqtt, lambda c: bool(c.settings.mqtt))
PYTHON = SenderSpec("python", "the Python API's on_event", lambda c: CallerSender(c.report), lambda c: c.report_events)

BUILTIN = {name: f"vidpipe.stages.outputs.senders:{name.upper()}" for name in ("jsonl", "webhook", "mqtt", "python")}
SENDERS: Registry[SenderSpec] = Registry(SenderSpec, "vidpipe.senders", "live.events.extra", BUILTIN)


def make_senders(base: SenderContext) -> list[EventSender]:
    """Every sender the settings turn on (built-ins, then live.events.extra in order); if one
    cannot be made, those made are closed and the error raised."""
    made: list[EventSender] = []
    try:
        for name in [*BUILTIN, *(n for n in base.settings.extra if n not in BUILTIN)]:
            spec = SENDERS.get(name)
            context = base if name in BUILTIN else _with_options(base, name)
            wanted = spec.enabled(context) if spec.enabled is not None else name in context.settings.extra
            if wanted:
                made.append(spec.create(context))
    except BaseException:
        for sender in made:
            sender.close(0.0)
        raise
    return made


def _with_options(base: SenderContext, name: str) -> SenderContext:
    options = base.settings.extra.get(name) or {}
    return replace(base, options=dict(options))


def check_senders(live: LiveSettings, source: str) -> None:
    """At config load: every live.events.extra name is a registered sender, its options fit."""
    for name, options in live.events.extra.items():
        try:
            spec = SENDERS.get(name, source)
            if spec.options is not None:
                from_mapping(spec.options, options or {}, source, f"live.events.extra.{name}")
        except ConfigError as exc:  # each error already begins with the source: only the key is the sender's
            raise ConfigError(str(exc), source=source, key=f"live.events.extra.{name}") from None

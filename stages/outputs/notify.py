"""Receivers of label events outside vidpipe: a webhook (JSON POST) and MQTT (paho-mqtt).

    sink thread --offer(event)--> bounded deque --sender thread--> deliver(event)
                     | full: dropped, counted (vidpipe_events_total{sink,outcome="dropped"})

A slow or dead receiver never slows the pipeline: offer() never blocks, each receiver has its own
thread, and what does not fit is dropped and counted. The webhook retries a failed POST with a
doubling back-off (0.5 s, 1 s, 2 s...) and then counts it `failed`; MQTT publishes with QoS 1 on
PREFIX/STREAM through paho's own network thread, which reconnects by itself. URLs with
credentials are masked in every log line.

May block: close() for up to `grace_s` (events still queued are delivered meanwhile; the rest
are dropped and counted) plus one request timeout.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from http.client import HTTPException
from typing import Any
from urllib.parse import unquote, urlsplit

from vidpipe.pipeline.backoff import BackoffPolicy
from vidpipe.pipeline.errors import ConfigError
from vidpipe.pipeline.redact import mask_url
from vidpipe.stages.config import EventSettings
from vidpipe.stages.web.metrics import Metrics

log = logging.getLogger(__name__)

RETRY = BackoffPolicy(initial_s=0.5, max_s=30.0)  # a failed POST is sent again after 0.5 s, 1 s, 2 s ...
LOG_EVERY = 100  # a receiver that stays down logs its 1st failure, then every 100th


class Sender:
    """A bounded queue and one thread delivering from it; subclasses implement deliver()."""

    name = "sender"

    def __init__(self, queue_size: int, metrics: Metrics) -> None:
        self.metrics = metrics
        self.maxlen = max(1, queue_size)
        self.failures = 0
        self._items: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._deadline = 0.0
        self._thread = threading.Thread(target=self._run, name=f"events-{self.name}", daemon=True)

    def start(self) -> Sender:
        self._thread.start()
        return self

    def offer(self, event: dict[str, Any]) -> None:
        """Queue `event` for delivery; never blocks (a full queue drops it, counted)."""
        with self._cond:
            if len(self._items) >= self.maxlen or self._closing.is_set():
                self.metrics.event(self.name, "dropped")
                return
            self._items.append(event)
            self._cond.notify()

    def deliver(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._items) or self._closing.is_set())
                if not self._items:
                    return
                if self._closing.is_set() and time.monotonic() > self._deadline:
                    self.metrics.event(self.name, "dropped", len(self._items))
                    self._items.clear()
                    return
                event = self._items.popleft()
            try:
                self.deliver(event)
            except Exception as exc:  # a bug in one receiver must not end the others' deliveries
                self.failed(f"{type(exc).__name__}: {exc}")

    def failed(self, why: str) -> None:
        self.metrics.event(self.name, "failed")
        self.failures += 1
        if self.failures % LOG_EVERY == 1:
            log.warning("events to %s: not delivered (%s); %d so far", self.name, mask_url(why), self.failures)

    def close(self, grace_s: float = 2.0) -> None:
        with self._cond:
            self._deadline = time.monotonic() + grace_s
            self._closing.set()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(grace_s + 10.0)


class WebhookSender(Sender):
    """Each event POSTed as JSON to `settings.webhook`, retried with back-off."""

    name = "webhook"

    def __init__(self, settings: EventSettings, metrics: Metrics) -> None:
        super().__init__(settings.queue_size, metrics)
        self.url, self.retries, self.timeout_s = settings.webhook, settings.retries, settings.timeout_s

    def deliver(self, event: dict[str, Any]) -> None:
        data = json.dumps(event, separators=(",", ":")).encode()
        why = ""
        for attempt in range(self.retries + 1):
            if attempt and self._closing.wait(RETRY.delay(attempt - 1)):
                break  # closing: no more waiting on a receiver that is down
            request = urllib.request.Request(self.url, data, {"Content-Type": "application/json",
                                                              "User-Agent": "vidpipe"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    response.read()
                self.metrics.event(self.name, "sent")
                return
            except urllib.error.HTTPError as exc:
                why = f"{mask_url(self.url)} answered {exc.code}"
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    break  # the receiver refuses this event: retrying will not help
            except (urllib.error.URLError, HTTPException, OSError) as exc:
                why = f"{mask_url(self.url)}: {getattr(exc, 'reason', exc)}"
        self.failed(why)


class MqttSender(Sender):
    """Each event published (QoS 1) on PREFIX/STREAM of the broker in `settings.mqtt`."""

    name = "mqtt"

    def __init__(self, settings: EventSettings, metrics: Metrics) -> None:
        import paho.mqtt.client as mqtt

        super().__init__(settings.queue_size, metrics)
        host, port, self.prefix, user, password = parse_mqtt_url(settings.mqtt)
        self.display = mask_url(settings.mqtt)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"vidpipe-{id(self):x}")
        if user:
            client.username_pw_set(user, password or None)
        client.max_queued_messages_set(self.maxlen)  # paho's own queue (while disconnected) is bounded too
        client.reconnect_delay_set(1, 30)
        client.on_publish = lambda c, userdata, mid, reason, props: self.metrics.event(self.name, "sent")
        client.on_connect = self._on_connect
        client.connect_async(host, port, keepalive=max(5, int(6 * settings.timeout_s)))
        client.loop_start()
        self._client, self._mqtt = client, mqtt

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("mqtt %s: connection refused: %s", self.display, reason)
        else:
            log.info("mqtt %s: connected", self.display)

    def deliver(self, event: dict[str, Any]) -> None:
        topic = f"{self.prefix}/{event.get('stream', '_')}" if self.prefix else str(event.get("stream", "_"))
        info = self._client.publish(topic, json.dumps(event, separators=(",", ":")), qos=1)
        if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:  # broker away for long: paho's queue is full
            self.metrics.event(self.name, "dropped")
        elif info.rc not in (self._mqtt.MQTT_ERR_SUCCESS, self._mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: queued
            self.failed(f"{self.display}: publish failed ({info.rc})")

    def close(self, grace_s: float = 2.0) -> None:
        super().close(grace_s)
        self._client.disconnect()
        self._client.loop_stop()


def parse_mqtt_url(url: str) -> tuple[str, int, str, str, str]:
    """mqtt://[user:pass@]host[:port]/topic/prefix -> (host, port, prefix, user, password)."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ConfigError(f"live.events.mqtt: expected mqtt://host[:port]/topic-prefix, got {mask_url(url)!r}",
                          key="live.events.mqtt")
    try:
        port = parts.port or 1883
    except ValueError:
        raise ConfigError(f"live.events.mqtt: bad port in {mask_url(url)!r}", key="live.events.mqtt") from None
    return (parts.hostname, port, parts.path.strip("/"), unquote(parts.username or ""),
            unquote(parts.password or ""))

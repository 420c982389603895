"""StreamsApi without a pipeline: bodies are checked with the config's schema and range checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vidpipe.stages.web.api import StreamsApi
from vidpipe.stages.web.control import AddStream, Reply


def api() -> tuple[StreamsApi, list[Any]]:
    sent: list[Any] = []

    def request(body: Any) -> Reply:
        sent.append(body)
        return Reply(1, 201, {"stream": {"name": "cam"}})

    return StreamsApi(request), sent


@pytest.mark.parametrize(("body", "key"), [
    ({"uri": "rtsp://cam/s", "slideshow_fps": 0}, "slideshow_fps"),
    ({"uri": "rtsp://cam/s", "stall_timeout_s": -1}, "stall_timeout_s"),
    ({"uri": "rtsp://cam/s", "open_timeout_s": 0}, "stall_timeout_s"),  # (one check covers both timeouts)
    ({"uri": "rtsp://cam/s", "max_retries": -1}, "max_retries"),
    ({"uri": "rtsp://cam/s", "backoff_initial_s": 60, "backoff_max_s": 30}, "backoff_initial_s"),
    ({"uri": "rtsp://cam/s", "backoff_jitter": 1.5}, "backoff_jitter"),
    ({"uri": "rtsp://cam/s", "fps_window_s": 0}, "fps_window_s"),
    ({"uri": "  "}, "uri"),
])
def test_out_of_range_values_are_400_naming_the_key(body: dict[str, Any], key: str) -> None:
    streams, sent = api()
    code, answer, _ = streams.handle("POST", "/api/streams", json.dumps(body).encode())
    assert (code, answer["key"]) == (400, key)
    assert answer["error"].startswith(f"POST /api/streams: {key}: ") and "must" in answer["error"]
    assert sent == []  # the job never hears of it


def test_a_good_body_reaches_the_job() -> None:
    streams, sent = api()
    code, _, _ = streams.handle("POST", "/api/streams", b'{"uri": "rtsp://cam/s", "slideshow_fps": 2}')
    assert code == 201 and isinstance(sent[0], AddStream) and sent[0].source.slideshow_fps == 2

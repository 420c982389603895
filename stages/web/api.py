"""`/api/streams` on the live view: list, add and remove live streams while the pipeline runs.

    GET    /api/streams          200 {"streams": [{name, uri (masked), origin, state, fps, label, ...}]}
    POST   /api/streams          body: one `live.sources` entry as JSON -> 201 {"stream": {...}}
    DELETE /api/streams/NAME     200 {"stream": {...}}: its source ends its stream, outputs finalize

Bodies are checked with the config's own schema (pipeline.config.from_mapping on SourceSettings)
and its own range checks (stages.live_settings.source_checks, as `validate` runs them on live.sources),
so a mistake is a 400 naming the key, as in a YAML file; the job answers 400 for a duplicate
name, the stream limit or an unknown stream. Who may call what is the guard's (stages.web.guard:
admins, or live.api_token, for POST and DELETE). This module only parses, checks and answers: the
job does the work, over the control link (stages.web.control).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any

from vidpipe.pipeline.config import from_mapping
from vidpipe.pipeline.errors import ConfigError
from vidpipe.stages.live_settings import SourceSettings, source_checks
from vidpipe.stages.web.control import AddStream, ListStreams, RemoveStream, Reply

PREFIX = "/api/streams"
KNOWN = {f.name for f in fields(SourceSettings)}
REQUIRED = {f.name for f in fields(SourceSettings) if f.default is MISSING and f.default_factory is MISSING}
MAX_BODY = 64 * 1024

Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, extra headers


class StreamsApi:
    """See the module docstring. `request` sends to the job and waits for its Reply; `describe`
    adds what the sink knows of a stream (state, fps, label); `on_removed` hears of deletions."""

    def __init__(self, request: Callable[[Any], Reply],
                 describe: Callable[[str], dict[str, Any]] | None = None,
                 on_removed: Callable[[str], None] | None = None) -> None:
        self.request = request
        self.describe = describe or (lambda name: {})
        self.on_removed = on_removed or (lambda name: None)

    def handle(self, method: str, path: str, body: bytes) -> Answer:
        if path.rstrip("/") == PREFIX and method == "GET":
            return self._list()
        if path.rstrip("/") == PREFIX and method == "POST":
            return self._add(body)
        if path.startswith(PREFIX + "/") and method == "DELETE":
            return self._remove(path[len(PREFIX) + 1:])
        return 405 if path.rstrip("/") == PREFIX else 404, {"error": f"no route {method} {path}"}, {}

    def _list(self) -> Answer:
        reply = self.request(ListStreams())
        if reply.code != 200:
            return reply.code, reply.body, {}
        streams = [{**s, **self.describe(s["name"])} for s in reply.body.get("streams", [])]
        return 200, {"streams": streams}, {}

    def _add(self, body: bytes) -> Answer:
        if len(body) > MAX_BODY:
            return 413, {"error": f"body larger than {MAX_BODY} bytes"}, {}
        try:
            data = json.loads(body or b"null")
            missing = sorted(REQUIRED - set(data)) if isinstance(data, dict) else []
            if missing:
                return 400, {"error": f"POST /api/streams: {missing[0]}: required", "key": missing[0]}, {}
            source = from_mapping(SourceSettings, data, source="POST /api/streams")
        except ConfigError as exc:  # (a ValueError too: first)
            unknown = sorted(set(data) - KNOWN) if isinstance(data, dict) else []
            return 400, {"error": str(exc), "key": unknown[0] if unknown else exc.key}, {}
        except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
            return 400, {"error": f"POST /api/streams: invalid JSON: {exc}", "key": ""}, {}
        for ok, key, message in source_checks(source, ""):
            if not ok:
                key = key.lstrip(".")
                return 400, {"error": f"POST /api/streams: {key}: {message}", "key": key}, {}
        reply = self.request(AddStream(source))
        return reply.code, self._with_state(reply.body), {}

    def _remove(self, name: str) -> Answer:
        reply = self.request(RemoveStream(name))
        if reply.code == 200:
            self.on_removed(name)
        return reply.code, self._with_state(reply.body), {}

    def _with_state(self, body: dict[str, Any]) -> dict[str, Any]:
        stream = body.get("stream")
        if isinstance(stream, dict) and "name" in stream:
            return {**body, "stream": {**stream, **self.describe(stream["name"])}}
        return body

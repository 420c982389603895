"""`/api/streams` of a running `vidpipe live`, over real HTTP: add a stream, remove it while the
other one goes on, bad bodies (400 naming the key), the bearer token."""

from __future__ import annotations

import itertools
import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.media import write_video
from tests.stages.jobs.test_live_job import Live, lines, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def call(url: str, method: str = "GET", body: Any = None, token: str = "",
         raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def start(tmp_path: Path, extra: str = "") -> tuple[Live, str, Path]:
    a = write_video(tmp_path / "a.mp4", frames=40, width=160, height=120, fps=20)
    write_video(tmp_path / "b.mp4", frames=40, width=160, height=120, fps=20)
    cfg = tmp_path / "live.yaml"
    cfg.write_text(f"job: live\nbackend:\n  name: sim\nlive:\n  status_interval_s: 0\n{extra}"
                   f"  sources:\n    - uri: {a}\n      loop: true\n")
    live = Live(["--config", str(cfg)], tmp_path / "out")
    return live, live.url() + "api/streams", tmp_path / "out"


def test_a_stream_is_added_and_removed_while_the_other_goes_on(tmp_path: Path) -> None:
    live, api, out = start(tmp_path)
    try:
        wait_until("labels of a", lambda: len(lines(out, "a")) > 5)
        code, body = call(api)
        assert code == 200 and [s["name"] for s in body["streams"]] == ["a"]
        assert body["streams"][0]["state"] == "streaming" and body["streams"][0]["origin"] == "config"

        t0 = time.monotonic()
        code, body = call(api, "POST", {"uri": str(tmp_path / "b.mp4"), "loop": True, "name": "bee"})
        assert code == 201 and body["stream"]["name"] == "bee" and body["stream"]["origin"] == "api"
        wait_until("the first label of the added stream", lambda: lines(out, "bee"), timeout=20)
        first_label_s = time.monotonic() - t0
        print(f"added stream: first label after {first_label_s:.2f} s")
        assert first_label_s < 10
        wait_until("status of both", lambda: set(json.loads(urllib.request.urlopen(
            live.url() + "status.json", timeout=5).read())["streams"]) == {"a", "bee"})

        n_a = len(lines(out, "a"))
        code, body = call(f"{api}/bee", "DELETE")
        assert code == 200 and body["stream"]["removing"] is True
        wait_until("the removed stream to leave status.json and /metrics", lambda: not _mentions(live, "bee"))
        n_bee = len(lines(out, "bee"))
        wait_until("more labels of a", lambda: len(lines(out, "a")) > n_a + 20)
        assert len(lines(out, "bee")) == n_bee  # its source has stopped
        assert [s["name"] for s in call(api)[1]["streams"]] == ["a"]
        # the other stream never paused: no gap in its capture clock around the removal
        ts = [r["t"] for r in lines(out, "a")[n_a - 5:]]
        assert max(b - a for a, b in itertools.pairwise(ts) if b > a) < 0.5
        # the name is free again once the stream is gone
        assert call(api, "POST", {"uri": str(tmp_path / "b.mp4"), "loop": True, "name": "bee"})[0] == 201
    finally:
        code = live.stop()
    assert code == 0
    assert not list(Path("/dev/shm").glob(f"vidpipe_{live.proc.pid}_*"))


def test_bad_requests_are_400_naming_the_key(tmp_path: Path) -> None:
    live, api, _out = start(tmp_path, "  max_streams: 2\n")
    try:
        b = str(tmp_path / "b.mp4")
        cases = [
            ({"uri": b, "lop": True}, "lop"),  # unknown key
            ({"uri": b, "loop": "yes"}, "loop"),  # wrong type
            ({"uri": b, "stall_timeout_s": "long"}, "stall_timeout_s"),
            ({"uri": b, "slideshow_fps": 0}, "slideshow_fps"),  # out of range, as in the YAML config
            ({"uri": " "}, "uri"),
            ({"loop": True}, "uri"),  # required
            ({"uri": b, "name": "a"}, "name"),  # duplicate
            ({"uri": b, "name": "../etc"}, "name"),  # would name a file outside the output folder
            ([b], "(top level)"),  # not a mapping
            ({"uri": "97"}, "uri"),  # a camera that is not there
        ]
        for request, key in cases:
            code, body = call(api, "POST", request)
            assert (code, body["key"]) == (400, key), (request, body)
            assert key in body["error"] or key == "(top level)"
        assert call(api, "POST", raw=b"{not json")[0] == 400
        code, body = call(f"{api}/nope", "DELETE")
        assert code == 400 and "nope" in body["error"]
        assert call(api, "POST", {"uri": b, "name": "two"})[0] == 201
        code, body = call(api, "POST", {"uri": b, "name": "three"})
        assert code == 400 and body["key"] == "live.max_streams"
        assert call(live.url() + "api/other")[0] == 404
    finally:
        assert live.stop() == 0


def test_mutations_need_the_bearer_token_when_one_is_set(tmp_path: Path) -> None:
    live, api, _out = start(tmp_path, "  api_token: s3cret-token\n")
    try:
        body = {"uri": str(tmp_path / "b.mp4"), "loop": True, "name": "bee"}
        assert call(api, "POST", body)[0] == 401
        assert call(api, "POST", body, token="wrong")[0] == 401
        assert call(f"{api}/a", "DELETE")[0] == 401
        assert call(api)[0] == 200  # reading is as open as /status.json
        assert call(api, "POST", body, token="s3cret-token")[0] == 201
        assert call(f"{api}/bee", "DELETE", token="s3cret-token")[0] == 200
    finally:
        assert live.stop() == 0
    assert "s3cret-token" not in live.log.read_text()


def _mentions(live: Live, stream: str) -> bool:
    status = json.loads(urllib.request.urlopen(live.url() + "status.json", timeout=5).read())
    metrics = urllib.request.urlopen(live.url() + "metrics", timeout=5).read().decode()
    return stream in status["streams"] or bool(re.search(rf'stream="{stream}"', metrics))

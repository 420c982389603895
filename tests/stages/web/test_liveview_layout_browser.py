"""The live page in a real headless Chromium at desktop and phone sizes: one card per stream with
its label and score, a LIVE / STALE / DOWN / STARTING badge, latency that says what it measures,
and no sideways scrolling on a 390x844 phone. Screenshots are saved beside the test's files."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.media import pattern_frame
from tests.stages.web.test_liveview_browser import CHROMIUM, FIGURE, Cdp, Chromium, wait_js
from vidpipe.stages.web.liveview import LiveView

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]

LIVE = "front-door"
STALE = "loading_dock_north_entrance_rtsp_camera_1920x1080"  # long: it must wrap, not widen the page
DOWN = "garage"
STARTING = "yard"
INFO = {"label": "tabby cat", "score": 0.713, "fps": 25.0, "state": "streaming", "latency_p50_ms": 41.0,
        "latency_p99_ms": 80.0}


class Streams:
    """LIVE publishes at 25 fps; STALE published once; DOWN streamed, then its source backs off;
    STARTING is still connecting."""

    def __init__(self, view: LiveView) -> None:
        self.view = view
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def __enter__(self) -> Streams:
        view = self.view
        view.publish(STALE, pattern_frame(3, 320, 240), {**INFO, "label": "espresso", "score": 0.52})
        view.publish(DOWN, pattern_frame(5, 320, 240), {**INFO, "label": "minivan", "score": 0.33})
        view.publish(DOWN, None, {"state": "backing_off", "fps": 0.0, "latency_p50_ms": 52.0, "latency_p99_ms": 90.0,
                                  "error": "source rtsp://admin:***@10.0.0.7/s: no frame (read failed or timed out)"})
        view.publish(STARTING, None, {"state": "connecting"})
        self.thread.start()
        return self

    def _run(self) -> None:
        i = 0
        while not self.stop.wait(0.04):
            self.view.publish(LIVE, pattern_frame(i, 320, 240), INFO)
            i += 1

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[LiveView, Cdp]]:
    with LiveView(port=0, stale_after_s=1.0) as view, Streams(view):
        chromium = Chromium(tmp_path / "profile")
        try:
            cdp = chromium.page("about:blank")
            try:
                yield view, cdp
            finally:
                cdp.close()
        finally:
            chromium.close()


def card(cdp: Cdp, name: str) -> dict[str, Any]:
    """What a person reads on a stream's card, and where it is."""
    return cdp.evaluate(f"""(() => {{
      const f = {FIGURE.format(name=json.dumps(name))}, r = f.getBoundingClientRect();
      const text = sel => f.querySelector(sel).textContent;
      return {{badge: text('.badge'), badge_class: f.querySelector('.badge').className, label: text('.label'),
               score: text('.score'), latency: text('.latency'), fps: text('.fps'), error: text('.error'),
               left: r.left, right: r.right, top: r.top, width: r.width,
               image: [f.querySelector('img').naturalWidth, f.querySelector('img').naturalHeight]}};
    }})()""")


def show(cdp: Cdp, url: str, width: int, height: int, mobile: bool) -> None:
    cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=2 if mobile else 1,
             mobile=mobile)
    cdp.open(url, "Page.domContentEventFired")  # the STARTING stream's MJPEG has no frame to load yet
    every = " && ".join(f"{FIGURE.format(name=json.dumps(n))}?.querySelector('.badge').textContent"
                        for n in (LIVE, STALE, DOWN, STARTING))
    stale = f"{FIGURE.format(name=json.dumps(STALE))}.querySelector('.badge').textContent.startsWith('STALE')"
    images = " && ".join(f"{FIGURE.format(name=json.dumps(n))}.querySelector('img').naturalWidth > 0"
                         for n in (LIVE, STALE, DOWN))
    cdp.evaluate(wait_js(f"({every}) && {stale} && {images}", "every badge and picture", 15_000))


def screenshot(cdp: Cdp, path: Path) -> None:
    shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def check_cards(cdp: Cdp) -> dict[str, dict[str, Any]]:
    cards = {name: card(cdp, name) for name in (LIVE, STALE, DOWN, STARTING)}
    for name in (LIVE, STALE, DOWN):  # the last frame shows, also where no new one comes
        assert cards[name]["image"] == [320, 240], name
    live, stale, down, starting = cards[LIVE], cards[STALE], cards[DOWN], cards[STARTING]
    assert (live["badge"], live["badge_class"]) == ("LIVE", "badge live")
    assert (live["label"], live["score"]) == ("tabby cat", "71%")
    assert live["latency"] == "capture → label p50 41 ms · p99 80 ms" and live["fps"] == "· 25 fps"
    assert re.fullmatch(r"STALE \d+ s", stale["badge"]) and stale["badge_class"] == "badge stale"
    assert (stale["label"], stale["score"]) == ("espresso", "52%")
    assert (down["badge"], down["badge_class"]) == ("DOWN · backing off", "badge down")
    assert down["label"] == "minivan"  # its last label stays, greyed
    assert "no frame" in down["error"] and "***" in down["error"]
    assert (starting["badge"], starting["badge_class"]) == ("STARTING", "badge starting")
    assert starting["latency"] == "capture → label: no frame yet"
    assert live["error"] == stale["error"] == ""
    return cards


def test_cards_badges_and_layout_on_desktop_and_phone(page: tuple[LiveView, Cdp], tmp_path: Path) -> None:
    view, cdp = page
    health = {name: s["health"] for name, s in view.status()["streams"].items()}
    assert health[LIVE] == "live" and health[DOWN] == "down" and health[STARTING] == "starting"

    show(cdp, view.url, 1280, 800, mobile=False)
    cards = check_cards(cdp)
    tops = sorted(round(c["top"]) for c in cards.values())
    assert tops.count(tops[0]) == 3  # a grid: three cards side by side at 1280 px, the fourth below
    screenshot(cdp, tmp_path / "liveview-desktop.png")

    show(cdp, view.url, 390, 844, mobile=True)
    cards = check_cards(cdp)
    width = cdp.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1] == 390  # no sideways scrolling
    assert all(c["left"] >= 0 and c["right"] <= 390 for c in cards.values())
    assert len({round(c["left"]) for c in cards.values()}) == 1  # one column
    assert all(c["width"] >= 340 for c in cards.values())  # each card takes the phone's width
    screenshot(cdp, tmp_path / "liveview-phone.png")
    assert (tmp_path / "liveview-phone.png").stat().st_size > 10_000

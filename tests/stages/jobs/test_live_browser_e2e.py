"""The whole live path seen by a person: a camera -> `vidpipe live` -> the page in headless Chromium.
When the camera's scene changes from a cat to a coffee cup, the label on the page follows."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from tests.media import CAT, COFFEE
from tests.mjpeg_server import MjpegServer
from tests.stages.jobs.test_live_job import Live
from tests.stages.web.test_liveview_browser import CHROMIUM, FIGURE, LABEL, Chromium, wait_js

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]



def test_page_label_follows_the_camera(tmp_path: Path) -> None:
    with MjpegServer(frame_fn=lambda i: CAT, fps=10, width=320, height=240) as cam:
        live = Live([cam.url(), "--backend", "cpu"], tmp_path / "out")
        chromium = Chromium(tmp_path / "profile")
        try:
            page = chromium.page(live.url())
            name = json.dumps(f"127.0.0.1_{cam.port}_x.mjpg")
            cat = page.evaluate(wait_js(LABEL.format(name=name), "a label", 30_000))
            assert cat in ("tiger cat", "Egyptian cat", "tabby")
            cam.frame_fn = lambda i: COFFEE
            changed = LABEL.format(name=name) + " === 'espresso'"
            assert page.evaluate(wait_js(changed, "the espresso label", 30_000)) is True
            figure = FIGURE.format(name=name)
            assert page.evaluate(f"{figure}.querySelector('.badge').textContent") == "LIVE"
            assert re.fullmatch(r"\d+%", page.evaluate(f"{figure}.querySelector('.score').textContent"))
            latency = page.evaluate(f"{figure}.querySelector('.latency').textContent")
            assert re.fullmatch(r"capture → label p50 \d+ ms · p99 \d+ ms", latency), latency
            assert page.evaluate(wait_js("document.getElementById('run').textContent.startsWith('run ')", "run id"))
            shot = page.call("Page.captureScreenshot", format="png")
            (tmp_path / "live.png").write_bytes(base64.b64decode(shot["data"]))
            page.close()
        finally:
            chromium.close()
            assert live.stop() == 0

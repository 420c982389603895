"""The job report (OUT/index.html) in a real headless Chromium, opened from disk (file://).

Without flags this is a user double-clicking the page: Chromium refuses a file:// <track>, and the
page falls back to the same WebVTT embedded in it. With --allow-file-access-from-files the
NAME.vtt file itself is loaded, which checks that Chromium's own WebVTT parser accepts it.
No autoplay flag is needed: the videos are muted, and play() is allowed for muted media.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.stages.outputs.conftest import LabeledJob
from tests.stages.web.test_liveview_browser import CHROMIUM, Cdp, Chromium, wait_js

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]

VIDEO = "document.querySelector('article.video[data-video=' + CSS.escape({name}) + '] video')"


def segments(out: Path, name: str) -> list[dict]:
    return list(json.loads((out / f"{name}.segments.json").read_text())["segments"])


def click(cdp: Cdp, element_js: str) -> None:
    """A real mouse click (press + release) in the middle of the element, scrolled into view."""
    x, y = cdp.evaluate(f"""(() => {{ const el = {element_js}; el.scrollIntoView({{block: 'center'}});
        const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
    for kind in ("mousePressed", "mouseReleased"):
        cdp.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def load(tmp_path: Path, out: Path, *flags: str) -> tuple[Chromium, Cdp]:
    chromium = Chromium(tmp_path / "profile", *flags)
    try:
        cdp = chromium.page("about:blank")
        cdp.call("Network.enable")
        cdp.open((out / "index.html").as_uri())
    except BaseException:
        chromium.close()
        raise
    return chromium, cdp


@pytest.mark.parametrize(("report", "flags"), [("out", ()), ("out", ("--allow-file-access-from-files",)),
                                               ("plain", ())], ids=["double-click", "file-access", "no-video"])
def test_every_video_plays_with_its_track_and_segments_seek(
    labeled: LabeledJob, tmp_path: Path, report: str, flags: tuple[str, ...]
) -> None:
    out = getattr(labeled, report)
    chromium, cdp = load(tmp_path, out, *flags)
    try:
        names = cdp.evaluate("[...document.querySelectorAll('article.video video')].map(v => v.closest('article')"
                             ".dataset.video)")
        assert sorted(names) == ["cup shot #1", "scenes"]
        for name in names:
            check_video(cdp, out, name, file_track="--allow-file-access-from-files" in flags)
        urls = [e["params"]["request"]["url"] for e in cdp.events if e["method"] == "Network.requestWillBeSent"]
        assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls  # nothing from a network
        assert any(u.endswith(".jpg") for u in urls)
    finally:
        cdp.close()
        chromium.close()


def check_video(cdp: Cdp, out: Path, name: str, file_track: bool) -> None:
    video = VIDEO.format(name=json.dumps(name))
    segs = segments(out, name)
    assert cdp.evaluate(wait_js(f"{video}.readyState >= 2", f"{name} loaded", 20_000)) is True
    cues = cdp.evaluate(wait_js(
        f"{video}.textTracks[0].cues && {video}.textTracks[0].cues.length === {len(segs)} && "
        f"[...{video}.textTracks[0].cues].map(c => [c.startTime, c.endTime, c.text])", f"{name} cues", 20_000))
    assert [c[2].split(" (")[0] for c in cues] == [s["name"] for s in segs]
    assert [c[0] for c in cues] == pytest.approx([s["start_s"] for s in segs], abs=1e-3)
    assert [c[1] for c in cues] == pytest.approx([s["end_s"] for s in segs], abs=1e-3)
    track_src = cdp.evaluate(f"{video}.querySelector('track').src")
    assert track_src.endswith(".vtt") if file_track else track_src.startswith("data:text/vtt")
    assert cdp.evaluate(f"{video}.play().then(() => true)") is True
    assert cdp.evaluate(wait_js(f"{video}.currentTime > 0.3", f"{name} playing", 20_000)) is True
    cdp.evaluate(f"{video}.pause()")
    last = len(segs) - 1
    seg = f"{video}.closest('article').querySelectorAll('.seg')[{last}]"
    click(cdp, seg)
    start = segs[last]["start_s"]
    assert cdp.evaluate(wait_js(f"Math.abs({video}.currentTime - {start}) < 0.05", f"{name} seek", 10_000)) is True
    assert cdp.evaluate(wait_js(f"{seg}.classList.contains('current')", "current segment", 10_000)) is True


def test_contact_sheet_and_a_screenshot_worthy_page(labeled: LabeledJob, tmp_path: Path) -> None:
    chromium, cdp = load(tmp_path, labeled.out)
    try:
        scenes = segments(labeled.out, "scenes")
        cup = segments(labeled.out, "cup shot #1")
        assert len(scenes) >= 2  # the scenes video changes label
        click(cdp, "document.querySelector('nav button[data-view=sheet]')")
        assert cdp.evaluate(wait_js("getComputedStyle(document.getElementById('videos')).display === 'none'",
                                    "sheet view")) is True
        sheet_imgs = "[...document.querySelectorAll('#sheet img')]"
        assert cdp.evaluate(wait_js(f"{sheet_imgs}.every(i => i.complete && i.naturalWidth > 0) && "
                                    f"{sheet_imgs}.length", "sheet thumbnails")) == len(scenes) + len(cup)
        assert "not a readable video" in cdp.evaluate(
            "document.querySelector('#sheet .sheet-row[data-video=\"broken.mp4\"]').textContent")
        cut = cdp.evaluate("[...document.querySelectorAll('#sheet .cap')].filter(c => c.scrollWidth > c.clientWidth"
                           " || c.scrollHeight > c.clientHeight + 1).length")
        assert cut == 0  # every caption of the contact sheet whole (the first one was cut)
        last = len(scenes) - 1
        click(cdp, f"document.querySelectorAll('#sheet .sheet-row[data-video=scenes] .sheet-thumb')[{last}]")
        video = VIDEO.format(name=json.dumps("scenes"))
        start = scenes[last]["start_s"]
        assert cdp.evaluate(wait_js(f"Math.abs({video}.currentTime - {start}) < 0.05", "sheet seek", 20_000)) is True
        assert cdp.evaluate("getComputedStyle(document.getElementById('sheet')).display") == "none"
        cdp.evaluate("window.scrollTo(0, 0)")
        state = cdp.evaluate(wait_js(PAGE_STATE, "a finished page", 20_000))
        assert state["sideways"] is False
        assert state["badges"] == {"broken.mp4": "failed", "cup shot #1": "done", "scenes": "done"}
        assert "not a readable video" in state["error"]
        assert state["totals"].startswith("3 videos · 2 done · 1 failed")
        assert "the two may differ" in cdp.evaluate("document.querySelector('.legend').textContent")
        facts = cdp.evaluate("document.querySelector('article.video[data-video=scenes] .facts').textContent")
        assert facts.count(" s)") == 0 and "duration0:0" in facts  # the duration, said once
        widths = state["timeline"]["scenes"]
        durations = [s["end_s"] - s["start_s"] for s in scenes]
        assert widths == pytest.approx([d / sum(durations) for d in durations], abs=0.02)
        assert state["thumbs"] == len(scenes) + len(cup)
        shot = cdp.call("Page.captureScreenshot", format="png")
        (tmp_path / "report.png").write_bytes(base64.b64decode(shot["data"]))  # for a person to look at
        assert len(base64.b64decode(shot["data"])) > 20_000
    finally:
        cdp.close()
        chromium.close()


# Everything a screenshot of the videos view would show, read from the DOM once every thumbnail is in.
PAGE_STATE = """(() => {
  const imgs = [...document.querySelectorAll('#videos .thumbs img')];
  if (!imgs.every(i => i.complete && i.naturalWidth > 0)) return null;
  const timeline = {};
  for (const a of document.querySelectorAll('article.video')) {
    const t = a.querySelector('.timeline'); if (!t) continue;
    const total = t.getBoundingClientRect().width;
    timeline[a.dataset.video] = [...t.querySelectorAll('.seg')].map(s => s.getBoundingClientRect().width / total);
  }
  return {
    sideways: document.documentElement.scrollWidth > document.documentElement.clientWidth,
    badges: Object.fromEntries([...document.querySelectorAll('article.video')].map(
      a => [a.dataset.video, a.querySelector('.badge').textContent])),
    error: document.querySelector('article.video[data-status=failed] .error').textContent,
    totals: document.querySelector('.totals').textContent,
    timeline, thumbs: imgs.length,
  };
})()"""

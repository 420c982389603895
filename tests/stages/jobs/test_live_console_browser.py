"""A live run on this machine's own network address, seen by a person in headless Chromium: https
with the certificate the run made (trusted by its key, as a user who checked the fingerprint would),
the sign-in page, then the console: a day's label strip, events with snapshots, a clip and a
recording that play and seek, a moment clicked on the strip, and a stream added and removed from
the page by the admin."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.media import CAT, COFFEE
from tests.stages.jobs.test_live_events import _video
from tests.stages.jobs.test_live_job import Live, wait_until
from tests.stages.web.test_liveview_browser import CHROMIUM, FIGURE, Cdp, Chromium, wait_js
from tests.stages.web.test_signin import own_address
from vidpipe.stages.outputs.timeline import TimelineWriter

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]

DAY_LABELS = ("forklift", "pallet", "nothing")


def seed_yesterday(out: Path) -> int:
    """A day of label index from an earlier run, written by the sink's own writer: 10-s buckets."""
    writer, now, n = TimelineWriter(out, "cam", "earlier-run", 0), time.time(), 0
    for t in range(int(now - 86_000), int(now - 4_000), 10):
        writer.add(float(t), DAY_LABELS[(t // 3600) % 3], 0.9)
        n += 1
    writer.close()
    return n - 1  # the open bucket of the last add is written at close too: n lines in all


def spki_hash(cert_pem: Path) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list takes: base64 SHA-256 of the public key."""
    key = x509.load_pem_x509_certificate(cert_pem.read_bytes()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def sign_in(page: Cdp, password: str) -> None:
    assert page.evaluate("location.pathname") == "/login"  # the page sent us to sign in
    page.events.clear()
    page.evaluate(f"""(() => {{ const f = document.getElementById('login');
        f.username.value = 'admin'; f.password.value = {json.dumps(password)}; f.requestSubmit(); }})()""")
    page.wait_event("Page.domContentEventFired")  # the live page (its MJPEG never finishes loading)


def test_signed_in_console_over_tls(tmp_path: Path) -> None:
    bind, host = own_address()
    video = _video(tmp_path / "cam.mp4", [CAT] * 25 + [COFFEE] * 25)  # 2.5 s each at 10 fps
    out = tmp_path / "out"
    day = seed_yesterday(out)
    config = tmp_path / "live.yaml"
    config.write_text(f"job: live\nlive:\n  http_host: {bind}\n  record: true\n"
                      "  clips:\n    labels: [espresso]\n    pre_s: 0.5\n    post_s: 0.5\n    fps: 5\n"
                      f"  sources:\n    - uri: {video}\n      name: cam\n      loop: true\n")
    live = Live(["--config", str(config), "--backend", "cpu"], out)
    chromium = None
    try:
        url = live.url().replace(bind, host)
        assert url.startswith("https://")
        password = re.search(r"with password (\S+)", live.log.read_text()).group(1)  # type: ignore[union-attr]
        trusted = spki_hash(out / "tls" / "cert.pem")
        chromium = Chromium(tmp_path / "profile", f"--ignore-certificate-errors-spki-list={trusted}")
        page = chromium.page(url)
        sign_in(page, password)
        cam = FIGURE.format(name=json.dumps("cam"))
        assert page.evaluate(wait_js("document.getElementById('user-name').textContent", "the user")) == "admin (admin)"

        # a day's strip: the earlier run's index, drawn
        page.evaluate("(() => { const s = document.getElementById('strip-span'); s.value = 'day';"
                      " s.dispatchEvent(new Event('change')); })()")
        buckets = page.evaluate(wait_js(f"+({cam}).querySelector('canvas.strip').dataset.buckets >= {day}",
                                        "the day's strip", 30_000))
        assert buckets is True

        # events with their snapshots, then the clip of the espresso run, played
        shot = "[...document.querySelectorAll('#events li.label')].find(li => li.textContent.includes('espresso'))" \
               "?.querySelector('img')"
        assert page.evaluate(wait_js(f"{shot}?.complete && {shot}.naturalWidth", "an event's snapshot", 40_000)) == 320
        page.evaluate(wait_js("document.querySelector('#events a.clip')", "a clip in the events", 40_000))
        page.evaluate("document.querySelector('#events a.clip').click()")
        assert page.evaluate(wait_js("document.getElementById('player').readyState >= 2", "the clip playing")) is True

        # a recording (the one being written) plays and seeks
        page.evaluate(wait_js("document.querySelector('#recordings a.recording')", "a recording", 20_000))
        page.evaluate("document.querySelector('#recordings a.recording').click()")
        page.evaluate(wait_js("document.getElementById('player').dataset.file.endsWith('.mp4') &&"
                              " document.getElementById('player').readyState >= 1", "the recording loaded", 20_000))
        seeked = page.evaluate("""new Promise(resolve => { const v = document.getElementById('player');
            v.addEventListener('seeked', () => resolve(v.currentTime), {once: true}); v.currentTime = 1.5; })""")
        assert abs(seeked - 1.5) < 0.2
        assert page.evaluate(wait_js("document.getElementById('player').readyState >= 2", "the frame at 1.5 s"))

        # a moment clicked on the strip shows what was there
        page.evaluate(f"""(() => {{ const c = ({cam}).querySelector('canvas.strip');
            c.dispatchEvent(new MouseEvent('click', {{clientX: c.getBoundingClientRect().left + c.clientWidth / 2,
                                                      clientY: c.getBoundingClientRect().top + 5}})); }})()""")
        caption = page.evaluate(wait_js("!document.getElementById('moment').hidden &&"
                                        " document.getElementById('moment-caption').textContent", "the moment"))
        assert caption.startswith("cam at ") and caption.split(": ")[-1] in DAY_LABELS

        # the admin adds a stream from the page, then removes it
        page.evaluate(f"""(() => {{ document.getElementById('add-uri').value = {json.dumps(str(video))};
            document.getElementById('add-name').value = 'door'; document.getElementById('add-loop').checked = true;
            document.getElementById('add-stream').requestSubmit(); }})()""")
        door = FIGURE.format(name=json.dumps("door"))
        page.evaluate(wait_js(f"({door})?.querySelector('.label').textContent", "the added stream's label", 30_000))
        page.evaluate(wait_js(f"({door}).querySelector('button.remove')", "its remove button"))
        page.evaluate(f"({door}).querySelector('button.remove').click()")
        assert page.evaluate(wait_js(f"!({door})", "the stream gone", 20_000)) is True

        disk = page.evaluate(wait_js("document.getElementById('retention').textContent", "disk use"))
        assert disk.startswith("total ") and "keep all" in disk
        wait_until("the removal in the log", lambda: "source door: removed" in live.log.read_text())
        page.close()
    finally:
        if chromium is not None:
            chromium.close()
        code = live.stop()
    assert code == 0, live.log.read_text()[-3000:]

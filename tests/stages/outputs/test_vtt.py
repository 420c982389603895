"""NAME.vtt: valid WebVTT, one cue per segment (Chromium's own parser reads it in test_report_browser)."""

from __future__ import annotations

import re
from itertools import pairwise

from vidpipe.stages.outputs.smoothing import Segment
from vidpipe.stages.outputs.vtt import cue_text, vtt_document, vtt_time

TIMING = re.compile(r"^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$")


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse(text: str) -> list[tuple[float, float, str]]:
    """A strict reader of what vtt_document promises: header, blank line, then blocks of
    identifier / timing / one text line, separated by blank lines."""
    assert text.startswith("WEBVTT\n\n")
    cues = []
    for block in text[len("WEBVTT\n\n"):].strip("\n").split("\n\n"):
        ident, timing, payload = block.split("\n")
        m = TIMING.match(timing)
        assert ident.isdigit() and m, block
        assert payload.strip() and "-->" not in payload
        cues.append((seconds(*m.groups()[:4]), seconds(*m.groups()[4:]), payload))
    return cues


def seg(name: str, start: float, end: float, score: float = 0.5) -> Segment:
    return Segment(1, name, start, end, 0, 0, 1, score)


def test_timestamps_are_hh_mm_ss_mmm() -> None:
    assert vtt_time(0) == "00:00:00.000"
    assert vtt_time(6.16) == "00:00:06.160"
    assert vtt_time(3723.4567) == "01:02:03.457"
    assert vtt_time(-0.001) == "00:00:00.000"
    assert vtt_time(100 * 3600) == "100:00:00.000"


def test_one_cue_per_segment_in_order_never_overlapping_or_empty() -> None:
    segments = [seg("tiger cat", 0.0, 3.0, 0.7349), seg("espresso", 3.0, 6.16, 0.84), seg("blip", 6.16, 6.1604),
                seg("missile", 6.1604, 9.0, 7.5)]
    cues = parse(vtt_document(segments))
    assert [c[2] for c in cues] == ["tiger cat (73%)", "espresso (84%)", "missile (7.50)"]  # no 0.4 ms blip
    assert [c[:2] for c in cues] == [(0.0, 3.0), (3.0, 6.16), (6.16, 9.0)]
    assert all(a[1] <= b[0] for a, b in pairwise(cues)) and all(s < e for s, e, _ in cues)
    assert vtt_document([]) == "WEBVTT\n"


def test_names_cannot_break_the_format() -> None:
    assert cue_text("a <b> & c", 0.5) == "a &lt;b&gt; &amp; c (50%)"
    assert cue_text("x --> y\nz", 0.25) == "x -&gt; y z (25%)"
    assert cue_text("\n", 1.0) == "? (100%)"
    cues = parse(vtt_document([seg("line\n\nbreak --> here", 0, 1)]))
    assert cues == [(0.0, 1.0, "line break -&gt; here (50%)")]

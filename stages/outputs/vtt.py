"""NAME.vtt: the label segments of a video as a WebVTT track, one cue per segment.

    WEBVTT

    1
    00:00:00.000 --> 00:00:03.000
    Egyptian cat (73%)

A `<track>` beside the `<video>` shows it in every browser (Chromium ignores text tracks muxed
inside an MP4), and players such as VLC and mpv load it as subtitles. Cue times are the
segments' `start_s` (inclusive) and `end_s` (exclusive: the next segment's start).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vidpipe.stages.outputs.smoothing import Segment

HEADER = "WEBVTT"
_BREAKS = re.compile(r"[\r\n]+")


def vtt_time(seconds: float) -> str:
    """HH:MM:SS.mmm (WebVTT's long form, valid past an hour)."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def cue_text(name: str, score: float) -> str:
    """`name (73%)`: probabilities as a percentage, other scores as a number. The characters
    WebVTT gives a meaning to (& < >, and "-->" or a line break, which would end the cue) are escaped."""
    name = _BREAKS.sub(" ", name).replace("-->", "->").strip() or "?"
    name = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"{name} ({score:.0%})" if 0.0 <= score <= 1.0 else f"{name} ({score:.2f})"


def vtt_document(segments: Sequence[Segment]) -> str:
    """The whole track: a cue per segment, in time order, never overlapping or empty (a segment
    that rounds to no time at millisecond precision is left out)."""
    blocks = [HEADER, ""]
    last_end = 0
    number = 0
    for seg in sorted(segments, key=lambda s: s.start_s):
        start = max(round(seg.start_s * 1000), last_end)
        end = round(seg.end_s * 1000)
        if end <= start:
            continue
        number += 1
        blocks += [str(number), f"{vtt_time(start / 1000)} --> {vtt_time(end / 1000)}",
                   cue_text(seg.name, seg.mean_score), ""]
        last_end = end
    return "\n".join(blocks)

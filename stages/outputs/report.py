"""OUT/index.html: the job report, one static page that opens from disk with a double-click.

    header     totals (videos, done, failed, duration, frames), links to summary.csv/.json,
               a switch between the two views:
    Videos     per video: status and error, duration, frames, fps, size, labeling speed, the top
               labels by share of time, the annotated video (the input when video output was
               off) with its label track (NAME.vtt), a coloured timeline of the segments and a
               thumbnail per segment; clicking a segment or a thumbnail seeks the video there.
    Contact sheet  every video's segment thumbnails on one screen; a click opens that moment.

Self-contained: the stylesheet and script are inlined (stages.outputs.report_assets), the only
files it refers to are the job's own outputs beside it (videos, tracks, thumbnails), by relative
URL. Nothing is fetched from a network. Each label has one colour on every video of the page: the
labels that cover the most time get the most distinct colours.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from vidpipe.stages.outputs.overlay import video_time
from vidpipe.stages.outputs.report_assets import CSS, JS
from vidpipe.stages.outputs.smoothing import Segment
from vidpipe.stages.outputs.summary import SUMMARY_CSV, SUMMARY_JSON, VideoSummary
from vidpipe.stages.outputs.vtt import cue_text
from vidpipe.stages.outputs.writers import write_text_atomic

REPORT_HTML = "index.html"


# Distinct, readable under white text (Tableau 10, darkened where white text needs it).
PALETTE = ("#2f6db3", "#d9711c", "#2e8b3e", "#c62f35", "#7d57a8", "#7f5449", "#c2448f", "#5f6b73", "#8f8c1c",
           "#1f8fa0")


LEGEND = ("Scores: the video shows each frame's own top labels and scores (and, large, the smoothed label); "
          "the timeline, the captions and the thumbnails show each segment's label with its mean score over the "
          "segment's frames, so the two may differ.")


def label_colours(rows: Sequence[VideoSummary]) -> dict[str, str]:
    """Label name -> colour: the palette in order of time covered in the whole job (ties by
    name), then hues spread by the golden angle."""
    seconds: dict[str, float] = {}
    for row in rows:
        for seg in row.segments:
            seconds[seg.name] = seconds.get(seg.name, 0.0) + seg.duration_s
    order = sorted(seconds, key=lambda n: (-seconds[n], n))
    return {name: PALETTE[i] if i < len(PALETTE) else f"hsl({(i * 137.508) % 360:.0f} 55% 40%)"
            for i, name in enumerate(order)}


def write_report(folder: Path, rows: Sequence[VideoSummary], tracks: dict[str, str]) -> None:
    """Writes folder/index.html (.part, then renamed). `tracks`: video -> its WebVTT text (inlined
    as the fallback of the <track> where the browser refuses to read a file:// track)."""
    write_text_atomic(folder / REPORT_HTML, render(rows, tracks))


def render(rows: Sequence[VideoSummary], tracks: dict[str, str]) -> str:
    e = html.escape
    colours = label_colours(rows)
    title = f"vidpipe report: {len(rows)} video{'s' if len(rows) != 1 else ''}"
    return "\n".join([
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{CSS}</style></head>",
        '<body class="videos-view">',
        "<header><h1>vidpipe report</h1>",
        f'<p class="totals">{e(_totals(rows))}</p>',
        f'<p class="legend">{e(LEGEND)}</p>',
        '<nav><button type="button" data-view="videos" aria-pressed="true">Videos</button>'
        '<button type="button" data-view="sheet" aria-pressed="false">Contact sheet</button>'
        f'<a href="{SUMMARY_CSV}">{SUMMARY_CSV}</a><a href="{SUMMARY_JSON}">{SUMMARY_JSON}</a></nav></header>',
        "<main>",
        '<section id="videos">',
        *(_article(row, tracks.get(row.video, ""), colours) for row in rows),
        "</section>",
        '<section id="sheet">',
        *(_sheet_row(row, colours) for row in rows),
        "</section>",
        f"</main><script>{JS}</script></body></html>",
        "",
    ])


def _totals(rows: Sequence[VideoSummary]) -> str:
    states: dict[str, int] = {}
    for row in rows:
        states[row.status] = states.get(row.status, 0) + 1
    seconds = sum(r.duration_s or 0.0 for r in rows)
    frames = sum(r.frames for r in rows)
    parts = [f"{len(rows)} video{'s' if len(rows) != 1 else ''}"]
    parts += [f"{n} {state}" for state, n in sorted(states.items())]
    parts += [f"{video_time(seconds)} of video", f"{frames:,} frames",
              f"written {datetime.now().astimezone().strftime('%Y-%m-%d %H:%M')}"]
    return " · ".join(parts)


def anchor(row: VideoSummary) -> str:
    """The id of a video's section (ids may hold any character but white space)."""
    return "v-" + "".join("_" if c.isspace() else c for c in row.video)


def _article(row: VideoSummary, vtt: str, colours: dict[str, str]) -> str:
    e = html.escape
    duration = f' data-duration="{row.duration_s:.3f}"' if row.duration_s else ""
    parts = [
        f'<article class="video" id="{e(anchor(row))}" data-video="{e(row.video)}" data-status="{e(row.status)}"'
        f"{duration}>",
        f'<div class="head"><h2>{e(row.video)}</h2><span class="badge {e(row.status)}">{e(row.status)}</span></div>',
        f'<p class="input">{e(row.input)}</p>',
    ]
    if row.error:
        parts.append(f'<p class="error">{e(row.error)}</p>')
    if row.warning:
        parts.append(f'<p class="warning">{e(row.warning)}</p>')
    parts.append(_facts(row))
    parts.append(f'<div class="body">{_player(row, vtt)}{_top(row, colours)}</div>')
    if row.segments:
        parts.append(_timeline(row, colours))
        parts.append(_thumbs(row, colours, "thumbs", "thumb"))
    parts.append("</article>")
    return "\n".join(parts)


def _facts(row: VideoSummary) -> str:
    facts = []
    if row.duration_s is not None:
        facts.append(("duration", video_time(row.duration_s)))
    facts.append(("frames", f"{row.frames:,}"))
    if row.fps:
        facts.append(("fps", f"{row.fps:.3g}"))
    if row.width and row.height:
        facts.append(("size", f"{row.width}×{row.height}"))
    if row.labeling_fps:
        facts.append(("labeled in", f"{row.labeling_s:.1f} s ({row.labeling_fps:.0f} fps)"))
    facts.append(("segments", str(len(row.segments))))
    items = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>" for k, v in facts)
    return f'<dl class="facts">{items}</dl>'


def _player(row: VideoSummary, vtt: str) -> str:
    if not row.media:
        return "" if row.error else '<p class="novideo">no video to show</p>'
    e = html.escape
    track = ""
    if row.track:
        track = (f'<track kind="captions" srclang="en" label="labels" default src="{e(_url(row.track))}"'
                 f' data-vtt="{e(vtt)}">')
    return f'<video controls muted playsinline preload="metadata" src="{e(_url(row.media))}">{track}</video>'


def _top(row: VideoSummary, colours: dict[str, str]) -> str:
    if not row.top:
        return ""
    items = "".join(
        f'<li style="--c:{colours.get(name, PALETTE[-1])}"><span class="bar" style="width:{share:.1%}"></span>'
        f'<span class="name"><span class="swatch"></span>{html.escape(name)}</span><b>{share:.0%}</b></li>'
        for name, share in row.top[:8])
    return f'<ol class="top" aria-label="labels by share of time">{items}</ol>'


def _timeline(row: VideoSummary, colours: dict[str, str]) -> str:
    segs = "".join(
        f'<button type="button" class="seg" style="flex-grow:{max(s.duration_s, 1e-3):.4f};'
        f'--c:{colours[s.name]}" data-start="{s.start_s:.3f}" data-end="{s.end_s:.3f}"'
        f' title="{html.escape(_span(s))}"><span>{html.escape(s.name)}</span></button>'
        for s in row.segments)
    end = row.duration_s if row.duration_s is not None else row.segments[-1].end_s
    return (f'<div class="timeline">{segs}<div class="playhead"></div></div>'
            f'<div class="ticks"><span>{video_time(0)}</span><span>{video_time(end / 2)}</span>'
            f"<span>{video_time(end)}</span></div>")


def _span(s: Segment) -> str:
    return f"{cue_text(s.name, s.mean_score)}: {video_time(s.start_s)}–{video_time(s.end_s)}"


def _thumbs(row: VideoSummary, colours: dict[str, str], list_class: str, item_class: str, sheet: bool = False) -> str:
    e = html.escape
    ratio = f"--ar:{row.width} / {row.height};" if row.width and row.height else ""
    items = []
    for i, s in enumerate(row.segments):
        thumb = row.thumbs[i] if i < len(row.thumbs) else ""
        img = (f'<img src="{e(_url(thumb))}" alt="{e(s.name)}" loading="lazy">' if thumb
               else '<img alt="">')
        target = f' data-video="{e(row.video)}" data-target="{e(anchor(row))}"' if sheet else ""
        items.append(
            f'<li><button type="button" class="{item_class}" style="--c:{colours[s.name]};{ratio}"'
            f' data-start="{s.start_s:.3f}"{target} title="{e(_span(s))}">{img}'
            f'<span class="cap"><strong>{e(s.name)}</strong> {video_time(s.start_s)}</span></button></li>')
    return f'<ul class="{list_class}">{"".join(items)}</ul>'


def _sheet_row(row: VideoSummary, colours: dict[str, str]) -> str:
    e = html.escape
    head = (f'<div class="head"><h2>{e(row.video)}</h2><span class="badge {e(row.status)}">{e(row.status)}</span>'
            f"</div>")
    body = (_thumbs(row, colours, "sheet-thumbs", "thumb sheet-thumb", sheet=True) if row.segments
            else f'<p class="empty">{e(row.error or "no segments")}</p>')
    return f'<div class="sheet-row" data-video="{e(row.video)}">{head}{body}</div>'


def _url(path: str) -> str:
    """A folder-relative path as a relative URL (spaces, #, ?, % and non-ASCII escaped; the raw
    bytes of a name that is not UTF-8)."""
    return quote(path.replace("\\", "/").encode("utf-8", "surrogateescape"), safe="/")

"""The live view's page: one HTML document, refreshed from /status.json every 500 ms.

Each stream is a card: its name, the node it runs on (live on Ray), and a badge (LIVE; STALE with
the age of its last frame when no new frame came for a while; DOWN with the source's state, e.g.
backing off; STARTING before its first frame), the picture (MJPEG for the first MJPEG_ON_PAGE
streams, refreshed snapshots after that: browsers allow about 6 connections per host), the label of
the newest frame with its score, and what the latency figures measure ("capture → label p50 41 ms ·
p99 80 ms": from the frame's capture to its label in the sink). The layout is a grid that becomes
one column on a phone: no sideways scrolling at 390 px. The card's markup exists once, in figure();
the script clones it from a <template> for streams that appear later. Names are URL-quoted in
paths, escaped in HTML.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

MJPEG_ON_PAGE = 4  # browsers allow ~6 connections per host: further streams refresh snapshots
_SLOT = re.compile(r"\{(title|figures|template|mjpeg_on_page)\}")


def figure(name: str, mjpeg: bool) -> str:
    """One stream's card (the script fills in the badge, label, score and figures)."""
    path = quote(name, safe="")
    src = (f"/stream/{path}.mjpg" if mjpeg else f"/snapshot/{path}.jpg") if name else ""
    n = html.escape(name)
    return (f'<figure class="stream" data-stream="{n}" data-mjpeg="{int(mjpeg)}"><img src="{src}" alt="{n}">'
            f'<figcaption><div class="head"><b class="name">{n}</b><span class="node"></span>'
            '<span class="badge"></span></div>'
            '<div class="result"><span class="label"></span> <span class="score"></span></div>'
            '<div class="meta"><span class="latency"></span> <span class="fps"></span></div>'
            '<div class="error"></div></figcaption></figure>')


def render(title: str, names: list[str]) -> str:
    values = {"title": html.escape(title), "template": figure("", False), "mjpeg_on_page": str(MJPEG_ON_PAGE),
              "figures": "\n".join(figure(name, i < MJPEG_ON_PAGE) for i, name in enumerate(names))}
    return _SLOT.sub(lambda m: values[m.group(1)], _PAGE)  # one pass: names never fill another slot


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
* { box-sizing: border-box; } [hidden] { display: none !important; }
body { font: 15px/1.4 system-ui, sans-serif; background: #111; color: #eee; margin: 0; padding: 12px; }
h1 { font-size: 1.25em; margin: 0 0 4px; }
#run, #updated { font-size: .8em; color: #999; margin: 0 0 12px; overflow-wrap: anywhere; }
#streams { display: grid; gap: 12px; grid-template-columns: repeat(auto-fill, minmax(min(100%, 340px), 1fr)); }
figure { margin: 0; background: #222; border-radius: 8px; overflow: hidden; min-width: 0; }
figure img { display: block; width: 100%; height: auto; min-height: 60px; background: #000; }
figcaption { padding: 8px 10px 10px; overflow-wrap: anywhere; }
.head { display: flex; align-items: center; justify-content: space-between; gap: 8px; }
.name { font-size: 1.05em; } .node { font-size: .75em; color: #9bd; margin-left: auto; }
.badge { flex: none; font-size: .75em; font-weight: 700; letter-spacing: .04em; padding: 2px 8px;
         border-radius: 10px; background: #555; color: #fff; }
.badge.live { background: #1f7a1f; } .badge.stale { background: #c78a00; color: #111; }
.badge.down { background: #c62828; } .badge.starting { background: #455a9e; }
.result { margin-top: 4px; } .label { font-size: 1.3em; color: #7fdc7f; } .score { color: #cfc; }
figure.stale .label, figure.down .label { color: #999; } figure.stale img, figure.down img { opacity: .5; }
.meta { font-size: .85em; color: #aaa; } .error { font-size: .85em; color: #f88; }
header { display: flex; justify-content: space-between; align-items: baseline; gap: 12px; flex-wrap: wrap; }
#user { font-size: .85em; color: #aaa; } #user button, #admin button, .remove { font: inherit; cursor: pointer; }
.remove { font-size: .75em; padding: 1px 6px; background: #444; color: #eee; border: 0; border-radius: 4px; }
#admin form { display: flex; gap: 6px; flex-wrap: wrap; margin: 0 0 12px; }
#admin input[type=text] { min-width: 0; flex: 1 1 12em; }
canvas.strip { display: block; width: 100%; height: 22px; margin-top: 6px; cursor: crosshair; }
section.console { margin-top: 20px; } section.console h2 { font-size: 1.05em; margin: 0 0 6px; }
#events, #recordings { list-style: none; padding: 0; margin: 0; max-height: 22em; overflow-y: auto; }
#events li { display: flex; gap: 8px; align-items: center; padding: 3px 0; border-bottom: 1px solid #222; }
#events img { height: 40px; border-radius: 3px; } #events time { color: #999; font-size: .85em; }
a { color: #8cf; } #disk { border-collapse: collapse; font-size: .85em; } #disk td, #disk th { padding: 2px 8px; }
#moment { display: flex; gap: 12px; flex-wrap: wrap; align-items: flex-start; }
#moment img, #moment video { max-width: min(100%, 480px); border-radius: 6px; background: #000; }
</style></head>
<body><header><h1>{title}</h1>
<div id="user" hidden><span id="user-name"></span>
<form method="post" action="/logout" style="display:inline"><button type="submit">sign out</button></form></div>
</header><p id="run"></p>
<div id="admin" hidden><form id="add-stream"><input type="text" id="add-uri" placeholder="camera, rtsp://..., file"
 required aria-label="uri"><input type="text" id="add-name" placeholder="name (optional)" aria-label="name">
<label><input type="checkbox" id="add-loop"> loop</label><button type="submit">add stream</button>
<span id="admin-status"></span></form></div>
<div id="streams">
{figures}
</div><p id="updated"></p><template id="figure">{template}</template>
<section class="console"><h2>What happened <select id="strip-span" aria-label="strips show">
<option value="hour">last hour</option><option value="day">last day</option></select></h2>
<div id="moment" hidden><img id="moment-snapshot" alt="snapshot nearest the moment"><div>
<video id="player" controls muted playsinline hidden></video><p id="player-caption"></p>
<p id="moment-caption"></p></div></div></section>
<section class="console"><h2>Events <select id="filter-stream" aria-label="stream"></select>
<input type="search" id="filter-label" placeholder="label" aria-label="label"></h2><ul id="events"></ul></section>
<section class="console"><h2>Recordings</h2><ul id="recordings"></ul></section>
<section class="console"><h2>Disk</h2><table id="disk"></table><p id="retention"></p></section>
<script src="/static/console.js"></script>
<script>
"use strict";
const ms = v => (v === null || v === undefined) ? "-" : `${Math.round(v)} ms`;
const STATES = {backing_off: "backing off"};
function figureFor(name) {
  for (const f of document.querySelectorAll("figure.stream")) if (f.dataset.stream === name) return f;
  const f = document.getElementById("figure").content.firstElementChild.cloneNode(true);
  const mjpeg = document.querySelectorAll("figure[data-mjpeg='1']").length < {mjpeg_on_page};
  f.dataset.stream = name; f.dataset.mjpeg = mjpeg ? "1" : "0";
  f.querySelector(".name").textContent = name;
  const img = f.querySelector("img");
  img.alt = name;
  img.src = (mjpeg ? "/stream/" : "/snapshot/") + encodeURIComponent(name) + (mjpeg ? ".mjpg" : ".jpg");
  document.getElementById("streams").append(f);
  return f;
}
function badge(s) {
  const state = STATES[s.state] ?? s.state ?? "?";
  if (s.health === "live") return "LIVE";
  if (s.health === "stale") return `STALE ${Math.round(s.frame_age_s)} s`;
  if (s.health === "down") return `DOWN · ${state}`;
  return "STARTING";
}
function show(f, s) {
  f.className = "stream " + s.health;
  f.querySelector(".node").textContent = s.node ? "node " + s.node : "";  // on Ray: where it runs
  const b = f.querySelector(".badge");
  b.className = "badge " + s.health; b.textContent = badge(s);
  b.title = s.health === "stale" ? "no new frame for " + s.frame_age_s + " s" : "source " + (s.state ?? "?");
  if (s.label !== undefined) {  // a stream that is down keeps its last label, greyed
    f.querySelector(".label").textContent = s.label;
    f.querySelector(".score").textContent = (s.score === null || s.score === undefined) ? "" :
      `${Math.round(s.score * 100)}%`;
  }
  f.querySelector(".latency").textContent = (s.latency_p50_ms === null || s.latency_p50_ms === undefined) ?
    "capture → label: no frame yet" : `capture → label p50 ${ms(s.latency_p50_ms)} · p99 ${ms(s.latency_p99_ms)}`;
  f.querySelector(".fps").textContent = (s.fps === undefined) ? "" : `· ${Math.round(s.fps * 10) / 10} fps`;
  f.querySelector(".error").textContent = s.health === "down" ? (s.error ?? "") : "";
}
async function poll() {
  try {
    const r = await fetch("/status.json", {cache: "no-store"});
    const status = await r.json();
    for (const f of document.querySelectorAll("figure.stream")) {
      if (!(f.dataset.stream in status.streams)) f.remove();  // removed at run time
    }
    for (const name of Object.keys(status.streams).sort()) {
      const f = figureFor(name), s = status.streams[name];
      show(f, s);
      if (f.dataset.mjpeg === "0") {
        f.querySelector("img").src = "/snapshot/" + encodeURIComponent(name) + ".jpg?n=" + s.frames_shown;
      }
    }
    const cards = Object.entries(status.accelerators ?? {}).map(
      ([k, v]) => `${k} busy ${Math.round(v.busy_ratio * 100)}%`);
    for (const [k, v] of Object.entries(status.nodes ?? {})) {
      cards.push(v.up ? `node ${k}: ${v.streams} streams, ${Math.round(v.decode_fps)} fps` : `node ${k} lost`);
    }
    document.getElementById("run").textContent = [status.run ? "run " + status.run : "", ...cards]
      .filter(Boolean).join(" · ");
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("updated").textContent = "live view unreachable: " + e;
  }
  setTimeout(poll, 500);
}
poll();
</script></body></html>
"""

"""The job report's stylesheet and script, inlined into OUT/index.html (no CDN, no web font, no
request to anywhere: the page works from disk, opened with a double-click)."""

from __future__ import annotations

CSS = """
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --ink: #1d2330; --muted: #5d6675;
  --line: #dde1e7; --ok: #1a7f37; --bad: #c62828; --warn: #b25e00; --idle: #6b7280; }
@media (prefers-color-scheme: dark) { :root { --bg: #14171c; --card: #1d2128; --ink: #e8eaee;
  --muted: #9aa3b2; --line: #333945; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { padding: 18px 24px 10px; border-bottom: 1px solid var(--line); background: var(--card); }
h1 { margin: 0 0 4px; font-size: 22px; }
h2 { margin: 0; font-size: 18px; overflow-wrap: anywhere; }
.totals { margin: 0 0 10px; color: var(--muted); }
nav { display: flex; gap: 8px; flex-wrap: wrap; }
nav button, nav a { font: inherit; padding: 5px 12px; border: 1px solid var(--line); border-radius: 6px;
  background: var(--bg); color: var(--ink); cursor: pointer; text-decoration: none; }
nav button[aria-pressed="true"] { background: var(--ink); color: var(--card); }
main { padding: 16px 24px 40px; max-width: 1280px; }
body.sheet-view #videos, body.videos-view #sheet { display: none; }
.video, .sheet-row { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 16px; margin: 0 0 16px; }
.head { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
.badge { font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: #fff;
  padding: 2px 8px; border-radius: 999px; background: var(--idle); }
.badge.done { background: var(--ok); } .badge.failed { background: var(--bad); }
.badge.incomplete { background: var(--warn); }
.input { margin: 2px 0 8px; color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }
.error { margin: 6px 0; padding: 8px 10px; border-left: 4px solid var(--bad); background: rgba(198,40,40,.08);
  overflow-wrap: anywhere; }
.warning { margin: 6px 0; padding: 8px 10px; border-left: 4px solid var(--warn); background: rgba(178,94,0,.08);
  overflow-wrap: anywhere; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 6px 0 12px; }
.facts div { display: flex; gap: 6px; } .facts dt { color: var(--muted); } .facts dd { margin: 0; font-weight: 600; }
.body { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
video { width: 560px; max-width: 100%; background: #000; border-radius: 6px; }
.novideo { color: var(--muted); }
.top { list-style: none; margin: 0; padding: 0; min-width: 220px; flex: 1; }
.top li { position: relative; padding: 4px 8px; margin-bottom: 4px; border-radius: 4px; overflow: hidden; }
.top .bar { position: absolute; inset: 0 auto 0 0; background: var(--c); opacity: .22; }
.top .name { position: relative; } .top b { position: relative; float: right; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; background: var(--c);
  margin-right: 6px; position: relative; }
.timeline { position: relative; display: flex; height: 34px; margin: 14px 0 2px; border-radius: 6px;
  overflow: hidden; border: 1px solid var(--line); }
.seg { flex: 1 1 0; min-width: 2px; border: 0; border-right: 1px solid rgba(255,255,255,.6); margin: 0;
  padding: 0; background: var(--c); color: #fff; font: 600 12px/34px system-ui, sans-serif;
  white-space: nowrap; overflow: hidden; cursor: pointer; text-align: left; }
.seg span { display: block; padding: 0 6px; overflow: hidden; text-overflow: ellipsis; }
.seg:hover, .seg.current { filter: brightness(1.18); box-shadow: inset 0 -4px 0 rgba(0,0,0,.35); }
.playhead { position: absolute; top: 0; bottom: 0; left: 0; width: 2px; background: #fff;
  box-shadow: 0 0 0 1px #000; pointer-events: none; }
.ticks { display: flex; justify-content: space-between; color: var(--muted); font-size: 12px; }
.thumbs { display: flex; gap: 10px; overflow-x: auto; list-style: none; margin: 10px 0 0; padding: 0 0 6px; }
.thumb { border: 0; padding: 0; background: none; color: inherit; font: inherit; cursor: pointer; text-align: left;
  width: 168px; flex: none; }
.thumb img { width: 168px; height: auto; aspect-ratio: var(--ar, 16 / 9); object-fit: cover; border-radius: 4px;
  border-bottom: 4px solid var(--c); display: block; background: var(--line); }
.cap { display: block; font-size: 12px; color: var(--muted); overflow-wrap: anywhere; }
.cap strong { color: var(--ink); display: block; } /* the label whole, the time under it: never cut */
.legend { color: var(--muted); font-size: 13px; margin: 4px 0 12px; }
.sheet-row .head { margin-bottom: 8px; }
.sheet-thumbs { display: flex; flex-wrap: wrap; gap: 6px; list-style: none; margin: 0; padding: 0; }
.sheet-thumb { width: 120px; } .sheet-thumb img { width: 120px; }
.empty { color: var(--muted); font-style: italic; }
"""

JS = """
(() => {
  const show = (view) => {
    document.body.classList.toggle('sheet-view', view === 'sheet');
    document.body.classList.toggle('videos-view', view !== 'sheet');
    for (const b of document.querySelectorAll('nav button[data-view]'))
      b.setAttribute('aria-pressed', String(b.dataset.view === view));
  };
  for (const b of document.querySelectorAll('nav button[data-view]'))
    b.addEventListener('click', () => { history.replaceState(null, '', '#' + b.dataset.view); show(b.dataset.view); });
  show(location.hash === '#sheet' ? 'sheet' : 'videos');

  // A <track> read from disk (file://) is refused by Chromium and Firefox: fall back to the same
  // WebVTT text, embedded in the page, as a data: URL.
  for (const tr of document.querySelectorAll('track[data-vtt]')) {
    const inline = () => { if (!tr.src.startsWith('data:'))
      tr.src = 'data:text/vtt;charset=utf-8,' + encodeURIComponent(tr.dataset.vtt); };
    tr.addEventListener('error', inline);
    if (tr.readyState === 3) inline();
  }

  const seek = (article, start) => {
    const video = article.querySelector('video');
    if (!video) return;
    const go = () => { video.currentTime = start; };
    if (video.readyState >= 1) go(); else video.addEventListener('loadedmetadata', go, {once: true});
  };
  for (const article of document.querySelectorAll('article.video')) {
    const video = article.querySelector('video');
    const segs = [...article.querySelectorAll('.seg')];
    const head = article.querySelector('.playhead');
    for (const el of article.querySelectorAll('[data-start]'))
      el.addEventListener('click', () => seek(article, Number(el.dataset.start)));
    if (!video) continue;
    video.addEventListener('error', () => {
      const note = document.createElement('p'); note.className = 'novideo';
      note.textContent = 'This browser cannot play ' + video.getAttribute('src');
      video.replaceWith(note);
    });
    video.addEventListener('timeupdate', () => {
      const t = video.currentTime, d = Number(article.dataset.duration) || video.duration || 1;
      if (head) head.style.left = Math.min(100, 100 * t / d) + '%';
      for (const s of segs) s.classList.toggle('current', t >= Number(s.dataset.start) && t < Number(s.dataset.end));
    });
  }
  for (const el of document.querySelectorAll('.sheet-thumb[data-video]')) {
    el.addEventListener('click', () => {
      const article = document.getElementById(el.dataset.target);
      if (!article) return;
      history.replaceState(null, '', '#videos'); show('videos');
      article.scrollIntoView({block: 'start'});
      seek(article, Number(el.dataset.start));
    });
  }
})();
"""

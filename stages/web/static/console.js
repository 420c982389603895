// The console of the live page: who is signed in, streams added and removed (admins), a label strip
// per stream (the last hour or day, with event markers: click a moment to see it), the events
// list, recordings that play and seek, and disk use. Everything comes from the JSON API.
"use strict";
const api = {csrf: "", admin: false};
const $ = (id) => document.getElementById(id);
const fmtTime = (t) => new Date(t * 1000).toLocaleString();
const fmtBytes = (n) => n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` :
  `${Math.round(n / 1e3)} kB`;
const span = {hour: 3600, day: 86400};
let strips = "hour";

async function getJson(url) {
  const r = await fetch(url, {cache: "no-store"});
  if (r.status === 401) { location.href = "/login?next=/"; throw new Error("signed out"); }
  return r.json();
}

async function send(method, url, body) {
  const headers = {"X-CSRF-Token": api.csrf};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(url, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const answer = await r.json();
  $("admin-status").textContent = r.ok ? `${method === "POST" ? "added" : "removing"} ${answer.stream.name}` :
    (answer.error || r.statusText);
  return r.ok;
}

function color(label) {
  let h = 0;
  for (const c of label) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h} 65% 45%)`;
}

async function drawStrip(figure) {
  const name = figure.dataset.stream, canvas = figure.querySelector("canvas.strip");
  if (!canvas) return;
  const until = Date.now() / 1000, since = until - span[strips];
  const data = await getJson(`/api/timeline/${encodeURIComponent(name)}?since=${since}&until=${until}`);
  const w = canvas.width = canvas.clientWidth || 300, h = canvas.height = 22, ctx = canvas.getContext("2d");
  const x = (t) => (t - since) / (until - since) * w;
  ctx.fillStyle = "#333"; ctx.fillRect(0, 0, w, h);
  for (const b of data.buckets) {
    ctx.fillStyle = color(b.label);
    ctx.fillRect(x(b.t), 4, Math.max(1, x(b.t + 10) - x(b.t)), h - 4);
  }
  ctx.fillStyle = "#fff";
  for (const e of data.events) ctx.fillRect(x(e.t) - 1, 0, 2, 6);
  canvas.dataset.buckets = data.buckets.length; canvas.dataset.events = data.events.length;
  canvas.strip = {since, until, data};
}

function bucketAt(strip, t) {
  let best = null;
  for (const b of strip.data.buckets) if (b.t <= t && (!best || b.t > best.t)) best = b;
  return best;
}

async function showMoment(name, t) {
  const strip = [...document.querySelectorAll("figure.stream")].find((f) => f.dataset.stream === name)
    ?.querySelector("canvas.strip")?.strip;
  const events = strip ? strip.data.events.filter((e) => e.snapshot) : [];
  events.sort((a, b) => Math.abs(a.t - t) - Math.abs(b.t - t));
  const shot = $("moment-snapshot");
  shot.hidden = !events.length;
  if (events.length) shot.src = events[0].snapshot;
  const bucket = strip ? bucketAt(strip, t) : null;
  $("moment-caption").textContent = `${name} at ${fmtTime(t)}` + (bucket ? `: ${bucket.label}` : "");
  const recordings = (await getJson(`/api/recordings?stream=${encodeURIComponent(name)}`)).recordings;
  const rec = recordings.filter((r) => r.start <= t + 1).pop() || recordings[0];
  if (rec) play(rec, Math.max(0, t - rec.start));
  $("moment").hidden = false;
}

function play(rec, offset) {
  const video = $("player");
  const seek = () => { video.currentTime = Math.min(offset, video.duration || offset); };
  if (video.dataset.file !== rec.file) {
    video.dataset.file = rec.file;
    video.src = rec.url;
    video.addEventListener("loadedmetadata", seek, {once: true});
  } else {
    seek();
  }
  $("player-caption").textContent = `${rec.file}: ${fmtTime(rec.start)} to ${fmtTime(rec.end)}`;
  video.hidden = false;
}

async function refreshEvents() {
  const stream = $("filter-stream").value, label = $("filter-label").value.trim();
  const q = new URLSearchParams({limit: "50", ...(stream && {stream}), ...(label && {label})});
  const list = $("events"), events = (await getJson(`/api/events?${q}`)).events;
  list.replaceChildren(...events.map((e) => {
    const li = document.createElement("li");
    li.className = "event " + e.type;
    const when = document.createElement("time");
    when.textContent = fmtTime(e.time ?? e.label_start_time);
    const what = document.createElement("span");
    what.textContent = ` ${e.stream}: ${e.type === "clip" ? "clip of " : ""}${e.label}` +
      (e.score !== undefined ? ` (${Math.round(e.score * 100)}%)` : "");
    li.append(when, what);
    if (e.snapshot) {
      const img = document.createElement("img");
      img.src = e.snapshot; img.alt = `${e.stream} ${e.label}`; img.loading = "lazy";
      li.append(img);
    }
    if (e.clip) {
      const a = document.createElement("a");
      a.href = e.clip; a.textContent = " play clip"; a.className = "clip";
      a.addEventListener("click", (ev) => { ev.preventDefault(); play({file: e.clip, url: e.clip,
        start: e.label_start_time, end: e.label_start_time + (e.duration_s || 0)}, 0); });
      li.append(a);
    }
    return li;
  }));
}

async function refreshRecordings() {
  const recordings = (await getJson("/api/recordings")).recordings;
  $("recordings").replaceChildren(...recordings.map((r) => {
    const li = document.createElement("li"), a = document.createElement("a");
    a.href = r.url; a.className = "recording";
    a.textContent = `${r.stream}: ${fmtTime(r.start)} to ${fmtTime(r.end)} (${fmtBytes(r.bytes)})`;
    a.addEventListener("click", (ev) => { ev.preventDefault(); play(r, 0); });
    li.append(a);
    return li;
  }));
}

async function refreshDisk() {
  const disk = await getJson("/api/disk"), kinds = ["recordings", "jsonl", "timeline", "clips", "snapshots"];
  const rows = Object.entries(disk.streams).sort().map(([name, use]) =>
    `<tr><th>${escape(name)}</th>${kinds.map((k) => `<td>${use[k] ? fmtBytes(use[k]) : "-"}</td>`).join("")}</tr>`);
  const keep = disk.retention.record_keep_s, cap = disk.retention.max_disk_gb;
  $("disk").innerHTML = `<tr><th></th>${kinds.map((k) => `<th>${k}</th>`).join("")}</tr>${rows.join("")}`;
  $("retention").textContent = `total ${fmtBytes(disk.total_bytes)}` +
    (disk.free_bytes !== null ? `, ${fmtBytes(disk.free_bytes)} free` : "") +
    ` · retention: ${keep ? `files older than ${keep / 3600} h are deleted` : "keep all"}` +
    (cap ? `, at most ${cap} GB` : "");
}

function escape(s) {
  const d = document.createElement("div");
  d.textContent = s;
  return d.innerHTML;
}

function decorate(figure) {  // a card the live page made: a strip, and a remove button for admins
  if (figure.querySelector("canvas.strip")) return;
  const canvas = document.createElement("canvas");
  canvas.className = "strip"; canvas.title = "labels: click a moment to see it";
  canvas.addEventListener("click", (ev) => {
    const s = canvas.strip;
    if (s) showMoment(figure.dataset.stream, s.since + ev.offsetX / canvas.clientWidth * (s.until - s.since));
  });
  figure.querySelector("figcaption").append(canvas);
  if (api.admin) {
    const b = document.createElement("button");
    b.className = "remove"; b.textContent = "remove"; b.type = "button";
    b.addEventListener("click", () => send("DELETE", `/api/streams/${encodeURIComponent(figure.dataset.stream)}`));
    figure.querySelector(".head").append(b);
  }
  drawStrip(figure);
}

async function start() {
  const me = await getJson("/api/me");
  api.csrf = me.csrf; api.admin = me.role === "admin";
  $("user").hidden = !me.auth;
  $("user-name").textContent = `${me.user} (${me.role})`;
  $("admin").hidden = !api.admin;
  $("add-stream").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {uri: $("add-uri").value.trim(), ...($("add-name").value.trim() && {name: $("add-name").value.trim()}),
      loop: $("add-loop").checked};
    if (await send("POST", "/api/streams", body)) ev.target.reset();
  });
  $("strip-span").addEventListener("change", (ev) => {
    strips = ev.target.value;
    document.querySelectorAll("figure.stream").forEach(drawStrip);
  });
  $("filter-stream").addEventListener("change", refreshEvents);
  $("filter-label").addEventListener("input", refreshEvents);
  new MutationObserver(() => document.querySelectorAll("figure.stream").forEach(decorate))
    .observe($("streams"), {childList: true});
  document.querySelectorAll("figure.stream").forEach(decorate);
  const tick = async () => {
    const names = [...document.querySelectorAll("figure.stream")].map((f) => f.dataset.stream);
    const select = $("filter-stream"), chosen = select.value;
    select.replaceChildren(new Option("every stream", ""), ...names.map((n) => new Option(n, n)));
    select.value = names.includes(chosen) ? chosen : "";
    await Promise.allSettled([refreshEvents(), refreshRecordings(), refreshDisk(),
      ...[...document.querySelectorAll("figure.stream")].map(drawStrip)]);
    setTimeout(tick, 5000);
  };
  tick();
}
start();

"""The console: what a live run recorded, read back from its output folder for the page.

    GET /api/events?stream=&label=&limit=100&before=T   label and clip events, newest first
    GET /api/timeline/NAME?since=T&until=T              a stream's label per 10 s, and its events
    GET /api/recordings?stream=NAME                     recordings with their time ranges
    GET /api/disk                                       bytes per stream and kind; the retention
    GET /files/PATH                                     a recording, clip or snapshot (HTTP ranges)

Everything is read from the files the sink writes (events segments, the timeline index of
stages.outputs.timeline, recordings, clips, snapshots), so the console shows past runs too and a
restarted sink loses nothing. /files serves only names the live writers make (the retention's
patterns), inside OUT: a recording being written is served up to what is on disk now, and
browsers play and seek fragmented MP4 through range requests.
"""

from __future__ import annotations

import calendar
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from vidpipe.stages.live_files import CLIP, CLIPS, SEGMENT, SNAPSHOT, SNAPSHOTS, TIMELINE, scan, segments

MAX_EVENTS = 1000
TAIL_BYTES = 8 << 20  # of a big events segment (results_hz), only the newest 8 MiB are read
KINDS = {".mp4": "recordings", ".jsonl": "jsonl"}  # in OUT itself (events segments count as jsonl)
EVENTS_ROW = "(events)"  # events segments belong to no stream
SUBFOLDER_KINDS = {CLIPS: "clips", TIMELINE: "timeline", SNAPSHOTS: "snapshots"}
MEDIA = {".mp4": "video/mp4", ".jpg": "image/jpeg"}
NO_CONSOLE = JSONResponse({"error": "no console: this server has no output folder"}, 404)


@dataclass(frozen=True)
class Console:
    out: Path
    keep_s: float = 0.0
    max_disk_gb: float = 0.0

    def events(self, stream: str = "", label: str = "", limit: int = 100, before: float = 0.0) -> list[dict[str, Any]]:
        """A label event links to the clip it started (a clip event comes later, when the clip is
        written, and names the label's start: the label event's time)."""
        found: list[dict[str, Any]] = []
        clips: dict[tuple[Any, Any, float], str] = {}  # (stream, label, start) of clips seen (newer)
        for path in reversed(segments(self.out, "events")):
            for event in reversed(_lines(path)):
                t, kind = _time(event), event.get("type")
                if kind == "clip" and (url := _clip_url(event)):
                    clips[(event.get("stream"), event.get("label"), round(t, 1))] = url
                if kind not in ("label", "clip") or (before and t >= before):
                    continue
                if (stream and event.get("stream") != stream) or (label and event.get("label") != label):
                    continue
                clip = _clip_url(event) or clips.get((event.get("stream"), event.get("label"), round(t, 1)))
                found.append({**event, "clip": clip, "snapshot": _file_url(event.get("snapshot"))})
                if len(found) >= limit:
                    return found
        return found

    def timeline(self, stream: str, since: float, until: float) -> dict[str, Any]:
        buckets: list[dict[str, Any]] = []
        for path in reversed(segments(self.out / TIMELINE, stream)):
            lines = _lines(path)
            buckets[:0] = [b for b in lines if since <= b.get("t", 0) <= until]
            if lines and lines[0].get("t", 0) < since:
                break  # older segments end before `since`
        events = [e for e in self.events(stream, limit=MAX_EVENTS, before=until) if _time(e) >= since]
        return {"stream": stream, "since": since, "until": until, "buckets": buckets,
                "events": [{"t": _time(e), "type": e["type"], "label": e.get("label"), "snapshot": e["snapshot"],
                            "clip": e["clip"]} for e in events]}

    def recordings(self, stream: str = "") -> list[dict[str, Any]]:
        found = []
        for entry in scan(self.out):
            name = entry.path.name
            if entry.path.parent != self.out or not name.endswith(".mp4"):
                continue
            owner, stamp = _owner(name)
            if stream and owner != stream:
                continue
            found.append({"stream": owner, "file": name, "url": f"/files/{name}", "bytes": entry.size,
                          "start": _epoch(stamp), "end": entry.mtime})
        return sorted(found, key=lambda r: (r["stream"], r["start"]))

    def disk(self, streams: list[str]) -> dict[str, Any]:
        per: dict[str, dict[str, int]] = {}
        for entry in scan(self.out):
            name = entry.path.name
            folder = entry.path.parent.name if entry.path.parent != self.out else ""
            owner = _clip_owner(name, streams) if folder == CLIPS else _owner(name)[0]
            owner = EVENTS_ROW if not folder and owner == "events" else owner
            kind = SUBFOLDER_KINDS.get(folder) or KINDS[entry.path.suffix]
            row = per.setdefault(owner, {})
            row[kind] = row.get(kind, 0) + entry.size
        try:
            fs = os.statvfs(self.out)
            free: int | None = fs.f_bavail * fs.f_frsize
        except OSError:
            free = None
        return {"streams": per, "total_bytes": sum(sum(r.values()) for r in per.values()), "free_bytes": free,
                "retention": {"record_keep_s": self.keep_s, "max_disk_gb": self.max_disk_gb}}

    def file(self, relative: str) -> Path | None:
        """OUT/relative, if the live writers make such a name; None otherwise."""
        folder, _, name = relative.rpartition("/")
        allowed = {"": (SEGMENT, ".mp4"), CLIPS: (CLIP, ".mp4"), SNAPSHOTS: (SNAPSHOT, ".jpg")}.get(folder)
        if allowed is None or "/" in name or not allowed[0].fullmatch(name) or not name.endswith(allowed[1]):
            return None
        path = self.out / relative
        return path if path.is_file() else None


def _lines(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read()
    except OSError:
        return []
    if size > TAIL_BYTES:
        data = data[data.find(b"\n") + 1:]
    out = []
    for line in data.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a line being written
        if isinstance(item, dict):
            out.append(item)
    return out


def _time(event: dict[str, Any]) -> float:
    return float(event.get("time") or event.get("label_start_time") or event.get("t") or 0.0)


def _file_url(relative: Any) -> str | None:
    return f"/files/{relative}" if isinstance(relative, str) and relative else None


def _clip_url(event: dict[str, Any]) -> str | None:
    path = event.get("path")
    return f"/files/{CLIPS}/{Path(path).name}" if event.get("type") == "clip" and isinstance(path, str) else None


def _owner(name: str) -> tuple[str, str]:
    """(stream, START) of STREAM.START[-N].ext."""
    stem = name.rsplit(".", 1)[0]
    owner, _, stamp = stem.rpartition(".")
    return owner, stamp.split("-")[0]


def _clip_owner(name: str, streams: list[str]) -> str:
    """Clips are STREAM_LABEL_TIME.mp4: the longest known stream name that prefixes it."""
    matches = [s for s in streams if name.startswith(f"{s}_")]
    return max(matches, key=len) if matches else name.split("_")[0]


def _epoch(stamp: str) -> float:
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        return 0.0


async def events_route(request: Request) -> Response:
    """Label and clip events, newest first.
    ---
    summary: Events (filter by stream and label)
    parameters:
      - {name: stream, in: query, schema: {type: string}}
      - {name: label, in: query, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, default: 100}}
      - {name: before, in: query, schema: {type: number}, description: epoch seconds}
    responses:
      200: {description: "{events: [{type, stream, label, time, snapshot (URL), clip (URL)}]}"}
    """
    q, console = request.query_params, _console(request)
    if console is None:
        return NO_CONSOLE
    limit = min(MAX_EVENTS, max(1, _number(q.get("limit"), 100)))
    events = await run_in_threadpool(console.events, q.get("stream", ""), q.get("label", ""), int(limit),
                                     _number(q.get("before"), 0.0))
    return JSONResponse({"events": events})


async def timeline_route(request: Request) -> Response:
    """A stream's label per 10 s and its events.
    ---
    summary: Label strip of a stream
    parameters:
      - {name: since, in: query, schema: {type: number}, description: "epoch seconds (default: an hour ago)"}
      - {name: until, in: query, schema: {type: number}, description: "epoch seconds (default: now)"}
    responses:
      200: {description: "{buckets: [{t, label, share, score, frames}], events: [{t, type, label, snapshot, clip}]}"}
    """
    q, now = request.query_params, time.time()
    until = _number(q.get("until"), now)
    since = _number(q.get("since"), until - 3600)
    if (console := _console(request)) is None:
        return NO_CONSOLE
    data = await run_in_threadpool(console.timeline, request.path_params["name"], since, until)
    return JSONResponse(data)


async def recordings_route(request: Request) -> Response:
    """Recordings (fragmented MP4) with their time ranges.
    ---
    summary: Recordings
    parameters:
      - {name: stream, in: query, schema: {type: string}}
    responses:
      200: {description: "{recordings: [{stream, file, url, bytes, start, end}]}"}
    """
    if (console := _console(request)) is None:
        return NO_CONSOLE
    found = await run_in_threadpool(console.recordings, request.query_params.get("stream", ""))
    return JSONResponse({"recordings": found})


async def disk_route(request: Request) -> Response:
    """Disk use per stream and kind, free space, and the retention in force.
    ---
    summary: Disk use
    responses:
      200: {description: "{streams: {NAME: {recordings, jsonl, clips, snapshots, timeline}}, total_bytes,
        free_bytes, retention}"}
    """
    if (console := _console(request)) is None:
        return NO_CONSOLE
    streams = sorted(request.app.state.view.status()["streams"])
    return JSONResponse(await run_in_threadpool(console.disk, streams))


async def file_route(request: Request) -> Response:
    console = _console(request)
    path = console.file(request.path_params["path"]) if console is not None else None
    if path is None:
        return Response(b"no such file\n", 404, media_type="text/plain")
    return FileResponse(path, media_type=MEDIA[path.suffix], headers={"Cache-Control": "no-cache"})


def _console(request: Request) -> Console | None:
    console: Console | None = request.app.state.console
    return console


def _number(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default

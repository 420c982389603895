"""The live view's routes, on Starlette (served by uvicorn: stages.web.server).

    GET  /                        the page (stages.web.page)
    GET  /stream/NAME.mjpg        MJPEG (multipart/x-mixed-replace) of one stream
    GET  /snapshot/NAME.jpg       its newest frame
    GET  /status.json             every stream's state, label, health
    GET  /metrics                 Prometheus text
    GET  /login, POST /login, POST /logout, GET /api/me     sign-in (stages.web.guard)
    GET/POST /api/streams, DELETE /api/streams/NAME         streams at run time (stages.web.api)
    GET  /api/openapi.json, /api/docs                       the REST API described (OpenAPI 3)
    GET  /api/events, /api/timeline/NAME, /api/recordings, /api/disk, /files/PATH   the console
                                                            (stages.web.console)
    GET  /static/console.js                                 the page's console script

Every route passes the guard first. Blocking work (waiting for a frame, the job's reply to an API
call) runs in worker threads, never on the event loop: a slow client holds only its own thread.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles

from vidpipe.stages.web.console import disk_route, events_route, file_route, recordings_route, timeline_route
from vidpipe.stages.web.guard import Guard, GuardMiddleware, login, login_page, logout, me

if TYPE_CHECKING:
    from vidpipe.stages.web.liveview import LiveView

BOUNDARY = "vidpipe-frame"
NO_STORE = {"Cache-Control": "no-store"}
STATIC = Path(__file__).parent / "static"
SCHEMA = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "vidpipe live", "version": "1"}})


def _view(request: Request) -> LiveView:
    view: LiveView = request.app.state.view
    return view


async def page(request: Request) -> Response:
    return HTMLResponse(_view(request).page(), headers=NO_STORE)


async def status(request: Request) -> Response:
    """Every stream's state, label, fps, latency and health.
    ---
    summary: Live status
    responses:
      200: {description: "{time, run, streams: {NAME: {label, score, fps, health, frame_age_s, ...}}}"}
    """
    return JSONResponse(_view(request).status(), headers=NO_STORE)


async def metrics(request: Request) -> Response:
    return Response(generate_latest(_view(request).registry), media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)


async def snapshot(request: Request) -> Response:
    jpeg = _view(request).snapshot(request.path_params["name"])
    if jpeg is None:
        return Response(b"no such stream\n", 404, media_type="text/plain")
    if not jpeg:
        return Response(b"no frame yet\n", 503, media_type="text/plain")
    return Response(jpeg, media_type="image/jpeg", headers=NO_STORE)


async def mjpeg(request: Request) -> Response:
    view, name = _view(request), request.path_params["name"]
    if not view.has_stream(name):
        return Response(b"no such stream\n", 404, media_type="text/plain")
    return StreamingResponse(_parts(view, name), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                             headers=NO_STORE)


def _parts(view: LiveView, name: str) -> Iterator[bytes]:
    """Each part is followed at once by the next boundary: a browser shows a part only once it sees
    the boundary after it, so a stream that stopped (stale, down) still shows its last frame."""
    yield f"--{BOUNDARY}\r\n".encode()
    seq = 0  # published frames count from 1
    while (item := view.next_frame(name, seq)) is not None:  # a worker thread waits here
        jpeg, seq = item
        if jpeg:
            head = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            yield head.encode() + jpeg + f"\r\n--{BOUNDARY}\r\n".encode()


async def streams_api(request: Request) -> Response:
    """Streams at run time.
    ---
    get:
      summary: List the streams
      responses:
        200: {description: "{streams: [{name, uri (credentials masked), origin, state, fps, label, ...}]}"}
    post:
      summary: Add a stream (admins)
      requestBody:
        content:
          application/json:
            schema: {type: object, required: [uri], description: "one live.sources entry (see the config reference)"}
      responses:
        201: {description: "{stream: {...}}"}
        400: {description: "{error, key}: the key that is wrong, as for a config file"}
        403: {description: not an admin}
    """
    api = _view(request).api
    if api is None:
        return JSONResponse({"error": "the API is off (live.api)"}, 404)
    body = await request.body()
    code, data, headers = await run_in_threadpool(api.handle, request.method, request.url.path, body)
    return JSONResponse(data, code, headers=headers)


async def stream_api(request: Request) -> Response:
    """One stream.
    ---
    delete:
      summary: Remove a stream (admins); its source ends, its outputs are finalized
      responses:
        200: {description: "{stream: {...}}"}
        400: {description: no such stream}
        403: {description: not an admin}
    """
    return await streams_api(request)


async def openapi(request: Request) -> Response:
    return JSONResponse(SCHEMA.get_schema(routes=request.app.routes))


async def api_docs(request: Request) -> Response:
    """The OpenAPI description as a page (no scripts from elsewhere: it works offline)."""
    schema = SCHEMA.get_schema(routes=request.app.routes)
    rows = []
    for path, ops in sorted(schema.get("paths", {}).items()):
        for method, op in ops.items():
            responses = "".join(f"<li><code>{code}</code> {html.escape(str(r.get('description', '')))}"
                                for code, r in op.get("responses", {}).items())
            body = op.get("requestBody")
            request_body = f"<pre>{html.escape(json.dumps(body, indent=1))}</pre>" if body else ""
            rows.append(f"<section><h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                        f"<p>{html.escape(op.get('summary', ''))}</p>{request_body}<ul>{responses}</ul></section>")
    return HTMLResponse(DOCS_PAGE.replace("{rows}", "\n".join(rows)), headers=NO_STORE)


async def _not_found(request: Request, exc: Exception) -> Response:
    """JSON under /api/ (scripts read `error`), text elsewhere."""
    code = getattr(exc, "status_code", 404)
    what = f"no route {request.method} {request.url.path}"
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": what}, code)
    return Response(f"{what}\n".encode(), code, media_type="text/plain")


def build_app(view: LiveView, guard: Guard) -> Starlette:
    routes = [
        Route("/", page, include_in_schema=False),
        Route("/index.html", page, include_in_schema=False),
        Route("/login", login_page, methods=["GET"], include_in_schema=False),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"], include_in_schema=False),
        Route("/api/me", me),
        Route("/status.json", status),
        Route("/metrics", metrics, include_in_schema=False),
        Route("/stream/{name:path}.mjpg", mjpeg, include_in_schema=False),
        Route("/snapshot/{name:path}.jpg", snapshot, include_in_schema=False),
        Route("/api/streams", streams_api, methods=["GET", "POST"]),
        Route("/api/streams/{name:path}", stream_api, methods=["DELETE"]),
        Route("/api/events", events_route),
        Route("/api/timeline/{name:path}", timeline_route),
        Route("/api/recordings", recordings_route),
        Route("/api/disk", disk_route),
        Route("/files/{path:path}", file_route, include_in_schema=False),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/api/openapi.json", openapi, include_in_schema=False),
        Route("/api/docs", api_docs, include_in_schema=False),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(GuardMiddleware, guard=guard)],
                    exception_handlers={404: _not_found, 405: _not_found})
    app.state.view, app.state.guard, app.state.console = view, guard, view.console
    return app


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vidpipe live: REST API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body { font: 15px/1.4 system-ui, sans-serif; max-width: 60em; margin: 1em auto; padding: 0 12px; }
h2 { font-size: 1.05em; margin: 1.2em 0 .2em; } pre { background: #f4f4f4; padding: 6px; overflow-x: auto; }</style>
</head><body><h1>vidpipe live: REST API</h1>
<p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3). Sign in with
<code>POST /login</code>, then send the cookie, or the token as <code>Authorization: Bearer TOKEN</code>.
State changes made with the cookie need <code>X-CSRF-Token</code> (from <code>GET /api/me</code>).</p>
{rows}
</body></html>
"""

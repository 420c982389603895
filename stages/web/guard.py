"""The live view's door: who may see and change what (an ASGI middleware in front of every route),
and the sign-in and sign-out pages.

With sign-in on (live.auth; on by default beyond 127.0.0.1), every route but /login needs an
identity (stages.web.sessions): a page asked for by a browser is sent to /login, anything else gets
401. /metrics is open when live.metrics_public is set. Viewers may read and watch; POST and DELETE
need an admin (else 403), and with the cookie also the session's CSRF secret in X-CSRF-Token and,
when the browser sends one, an Origin that is this server. With sign-in off, everyone reads, and
state changes need live.api_token as a bearer token when one is set (as before sign-in existed).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from vidpipe.stages.web.sessions import COOKIE, Identity, LoginThrottle, Sessions, bearer_of, service_identity

log = logging.getLogger(__name__)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
OPEN_PATHS = ("/login", "/logout")
ANONYMOUS = Identity("", "viewer", via="anonymous")
LOCAL_ADMIN = Identity("", "admin", via="anonymous")  # sign-in off and no token: loopback, as before
Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


@dataclass
class Guard:
    """The policy; `sessions` None: sign-in off."""

    sessions: Sessions | None
    api_token: str = ""
    metrics_public: bool = False
    secure: bool = False  # served over TLS: the cookie is Secure
    throttle: LoginThrottle = field(default_factory=LoginThrottle)

    def identify(self, request: Request) -> Identity | None:
        if self.sessions is not None:
            return self.sessions.identify(request.cookies.get(COOKIE), request.headers.get("authorization"))
        if not self.api_token:
            return LOCAL_ADMIN
        return service_identity(bearer_of(request.headers.get("authorization")), self.api_token) or ANONYMOUS

    def refusal(self, request: Request) -> Response | None:
        """The answer for a request that may not pass, None when it may (its identity then in
        request.state.who)."""
        path, method = request.url.path, request.method
        if path in OPEN_PATHS or (path == "/metrics" and (self.metrics_public or self.sessions is None)):
            return None
        who = self.identify(request)
        if who is None:
            if method == "GET" and "text/html" in request.headers.get("accept", ""):
                return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
            return _error(401, "sign in first (POST /login, then the cookie or 'Authorization: Bearer TOKEN')",
                          {"WWW-Authenticate": "Bearer"})
        request.state.who = who
        if method in SAFE_METHODS:
            return None
        if who.via == "anonymous" and not who.admin:
            return _error(401, "missing or wrong bearer token (live.api_token)", {"WWW-Authenticate": "Bearer"})
        if not who.admin:
            return _error(403, f"{who.name} is a viewer: only admins add or remove streams")
        if who.via == "cookie":
            return self._csrf_refusal(request, who)
        return None

    def _csrf_refusal(self, request: Request, who: Identity) -> Response | None:
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return _error(403, f"cross-site request from {origin} refused")
        if not hmac.compare_digest(request.headers.get("x-csrf-token", "").encode(), who.csrf.encode()):
            return _error(403, "missing or wrong X-CSRF-Token (GET /api/me gives it)")
        return None


class GuardMiddleware:
    """Pure ASGI (streaming responses pass through untouched)."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app, self.guard = app, guard

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refusal = self.guard.refusal(Request(scope, receive))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _error(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, code, headers=headers)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def login_page(request: Request) -> Response:
    guard: Guard = request.app.state.guard
    if guard.sessions is None:
        return RedirectResponse("/", status_code=303)
    return HTMLResponse(LOGIN_PAGE, headers={"Cache-Control": "no-store"})


async def login(request: Request) -> Response:
    """Sign in with a name and password; sets the session cookie and returns the token.
    ---
    summary: Sign in
    requestBody:
      content:
        application/json:
          schema: {type: object, properties: {username: {type: string}, password: {type: string}}}
    responses:
      200: {description: "{user, role, token, csrf}; the session cookie is set"}
      401: {description: wrong name or password}
      429: {description: too many failures from this address; Retry-After says how long to wait}
    """
    guard: Guard = request.app.state.guard
    if guard.sessions is None:
        return _error(404, "sign-in is off (live.auth)")
    address = _client(request)
    if wait := guard.throttle.wait_s(address):
        return _error(429, f"too many failed sign-ins from {address}: wait {wait:.0f} s",
                      {"Retry-After": str(int(wait) + 1)})
    form = await _credentials(request)
    user = await run_in_threadpool(guard.sessions.users.verify, form.get("username", ""), form.get("password", ""))
    if user is None:
        guard.throttle.failed(address)
        log.warning("live view: failed sign-in as %r from %s", form.get("username", "")[:64], address)
        return _error(401, "wrong user name or password")
    guard.throttle.succeeded(address)
    token, csrf = guard.sessions.issue(user)
    log.info("live view: %s (%s) signed in from %s", user.name, user.role, address)
    body = {"user": user.name, "role": user.role, "token": token, "csrf": csrf}
    response: Response = JSONResponse(body)
    if "json" not in request.headers.get("content-type", ""):  # a plain HTML form: back to the page
        target = form.get("next", "/")
        response = RedirectResponse(target if target.startswith("/") and not target.startswith("//") else "/", 303)
    response.set_cookie(COOKIE, token, max_age=guard.sessions.seconds, httponly=True, samesite="strict",
                        secure=guard.secure)
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=request.app.state.guard.secure)
    return response


async def me(request: Request) -> Response:
    """Who is signed in: name, role, the CSRF secret for X-CSRF-Token, and whether sign-in is on.
    ---
    summary: The signed-in user
    responses:
      200: {description: "{user, role, csrf, auth}"}
    """
    who: Identity = request.state.who
    return JSONResponse({"user": who.name, "role": who.role, "csrf": who.csrf,
                         "auth": request.app.state.guard.sessions is not None}, headers={"Cache-Control": "no-store"})


async def _credentials(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > 4096:
        return {}
    if "json" in request.headers.get("content-type", ""):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vidpipe live: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.4 system-ui, sans-serif; background: #111; color: #eee; display: grid;
       place-items: center; min-height: 90vh; margin: 0; }
form { background: #222; padding: 20px 24px; border-radius: 8px; display: grid; gap: 10px; width: min(92vw, 320px); }
input, button { font: inherit; padding: 6px 8px; border-radius: 4px; border: 1px solid #555; }
button { background: #1f7a1f; color: #fff; border: 0; } #error { color: #f88; min-height: 1.2em; }
</style></head><body>
<form id="login" method="post" action="/login">
<h1>vidpipe live</h1>
<label>User <input name="username" id="username" autocomplete="username" required></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
<input type="hidden" name="next" id="next" value="/">
<button type="submit">Sign in</button><div id="error"></div>
</form>
<script>
const form = document.getElementById("login"), next = new URLSearchParams(location.search).get("next") || "/";
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = JSON.stringify({username: form.username.value, password: form.password.value});
  const r = await fetch("/login", {method: "POST", headers: {"Content-Type": "application/json"}, body});
  if (r.ok) { location.href = next.startsWith("/") && !next.startsWith("//") ? next : "/"; return; }
  document.getElementById("error").textContent = (await r.json()).error || r.statusText;
});
</script></body></html>
"""

"""Who is asking: sessions, the service token, and the brake on password guessing.

A sign-in gives a session token: a JWT (PyJWT, HS256, signed with the users file's session_key)
naming the user, their password stamp (a `vidpipe users passwd` ends older sessions), a CSRF secret
and an expiry (live.session_hours). The browser keeps it in an HttpOnly, SameSite=Strict cookie
(Secure under TLS); scripts send it as `Authorization: Bearer TOKEN`. Every request is checked
against the users file as it is now: a removed user or a changed role counts at once.

A state change (POST, DELETE) made with the cookie must also carry the session's CSRF secret in
`X-CSRF-Token` (the page reads it from /api/me, which another site cannot read): a cookie alone
never changes anything. Bearer tokens are not sent by browsers on their own and need no CSRF header.
`live.api_token`, as a bearer token, is a service identity with the admin role.

Failed sign-ins are counted per client address: after FREE_FAILURES in a row, that address waits
2, 4, 8 ... seconds (at most MAX_WAIT_S) before it may try again, and is told so (429 with
Retry-After); a success clears its count.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

import jwt

from vidpipe.stages.web.users import User, UserStore

COOKIE = "vidpipe_session"
FREE_FAILURES = 5
MAX_WAIT_S = 300.0
SERVICE = "api-token"  # the name the service token signs in as


@dataclass(frozen=True)
class Identity:
    name: str
    role: str  # "admin" or "viewer"
    csrf: str = ""  # the session's CSRF secret ("" for bearer and service tokens: none needed)
    via: str = "cookie"  # "cookie", "bearer" or "token"

    @property
    def admin(self) -> bool:
        return self.role == "admin"


class Sessions:
    """Makes and checks session tokens; thread-safe."""

    def __init__(self, users: UserStore, hours: float, api_token: str = "") -> None:
        self.users = users
        self.seconds = int(hours * 3600)
        self.api_token = api_token

    def issue(self, user: User) -> tuple[str, str]:
        """(token, csrf secret) for a user who just signed in."""
        now = int(time.time())
        csrf = secrets.token_urlsafe(16)
        claims = {"sub": user.name, "pwd": user.stamp, "csrf": csrf, "iat": now, "exp": now + self.seconds}
        return jwt.encode(claims, self.users.session_key, algorithm="HS256"), csrf

    def identify(self, cookie: str | None, authorization: str | None) -> Identity | None:
        bearer = bearer_of(authorization)
        if service := service_identity(bearer, self.api_token):
            return service
        if bearer:
            return self._check(bearer, "bearer")
        return self._check(cookie, "cookie") if cookie else None

    def _check(self, token: str, via: str) -> Identity | None:
        try:
            claims = jwt.decode(token, self.users.session_key, algorithms=["HS256"],
                                options={"require": ["sub", "exp", "pwd", "csrf"]})
        except jwt.PyJWTError:
            return None
        user = self.users.get(str(claims["sub"]))
        if user is None or not hmac.compare_digest(user.stamp, str(claims["pwd"])):
            return None
        return Identity(user.name, user.role, str(claims["csrf"]) if via == "cookie" else "", via)


def bearer_of(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer TOKEN` header ("" for none or another scheme)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def service_identity(bearer: str, api_token: str) -> Identity | None:
    """The service identity (an admin) when `bearer` is live.api_token; compared in constant time."""
    if bearer and api_token and hmac.compare_digest(bearer.encode(), api_token.encode()):
        return Identity(SERVICE, "admin", via="token")
    return None


class LoginThrottle:
    """Failed sign-ins per client address; thread-safe."""

    def __init__(self, free: int = FREE_FAILURES, max_wait_s: float = MAX_WAIT_S) -> None:
        self.free, self.max_wait_s = free, max_wait_s
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # address -> (failures in a row, last at)

    def wait_s(self, address: str, now: float | None = None) -> float:
        """Seconds `address` must still wait before it may try (0: it may)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            count, last = self._failures.get(address, (0, 0.0))
        if count < self.free:
            return 0.0
        return max(0.0, last + min(2.0 ** (count - self.free + 1), self.max_wait_s) - now)

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            count, _ = self._failures.get(address, (0, 0.0))
            self._failures[address] = (count + 1, now)
            if len(self._failures) > 10_000:  # a scan from many addresses must not grow memory for ever
                oldest = min(self._failures, key=lambda a: self._failures[a][1])
                del self._failures[oldest]

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)

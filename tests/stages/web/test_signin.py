"""Sign-in, roles, CSRF, the brake on guessing and TLS, on a real server bound to this machine's own
non-loopback address (0.0.0.0 where it has none), spoken to with Python's ssl client."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.media import pattern_frame
from vidpipe.stages.live_settings import LiveSettings
from vidpipe.stages.web.access import settle_access
from vidpipe.stages.web.api import StreamsApi
from vidpipe.stages.web.control import AddStream, ListStreams, RemoveStream, Reply
from vidpipe.stages.web.liveview import LiveView
from vidpipe.stages.web.metrics import Metrics
from vidpipe.stages.web.tls import fingerprint, self_signed
from vidpipe.stages.web.users import UserStore

PASSWORDS = {"ada": "ada-password-1", "vic": "vic-password-1"}


def own_address() -> tuple[str, str]:
    """(bind, connect): this machine's non-loopback IPv4 address, else 0.0.0.0 reached on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.255", 1))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    return (address, address) if not address.startswith("127.") else ("0.0.0.0", "127.0.0.1")


@dataclass
class Server:
    view: LiveView
    host: str
    context: ssl.SSLContext
    users: UserStore
    calls: list[Any]

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPSConnection(self.host, self.view.port, context=self.context, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            hdrs = {"Content-Type": "application/json", **(headers or {})} if data else dict(headers or {})
            conn.request(method, path, data, hdrs)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def sign_in(self, name: str) -> tuple[str, str, str]:
        """(cookie header, csrf, token)."""
        code, headers, body = self.request("POST", "/login", {"username": name, "password": PASSWORDS[name]})
        assert code == 200, body
        answer = json.loads(body)
        return headers["set-cookie"].split(";")[0], answer["csrf"], answer["token"]


def fake_job(calls: list[Any]) -> StreamsApi:
    def request(body: Any) -> Reply:
        calls.append(body)
        if isinstance(body, ListStreams):
            return Reply(1, 200, {"streams": [{"name": "cam"}]})
        if isinstance(body, AddStream):
            return Reply(1, 201, {"stream": {"name": body.source.name or "new"}})
        assert isinstance(body, RemoveStream)
        return Reply(1, 200, {"stream": {"name": body.name}})

    return StreamsApi(request)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    out = tmp_path_factory.mktemp("signin")
    bind, host = own_address()
    users = UserStore(out / "users.json")
    users.set("ada", PASSWORDS["ada"], "admin", new=True)
    users.set("vic", PASSWORDS["vic"], "viewer", new=True)
    live = LiveSettings(http_host=bind, api_token="service-token-123")
    access = settle_access(live, out)  # beyond loopback: sign-in on, a self-signed certificate made
    assert access.guard.sessions is not None and access.tls == (out / "tls" / "cert.pem", out / "tls" / "key.pem")
    context = ssl.create_default_context(cafile=str(access.tls[0]))
    calls: list[Any] = []
    metrics = Metrics()
    metrics.frame("cam", latency_s=0.03)
    with LiveView(bind, 0, metrics.registry, api=fake_job(calls), guard=access.guard, tls=access.tls) as view:
        view.publish("cam", pattern_frame(0, 64, 48), {"label": "x"})
        yield Server(view, host, context, users, calls)


GUARDED = ["/", "/status.json", "/metrics", "/stream/cam.mjpg", "/snapshot/cam.jpg", "/api/streams", "/api/me",
           "/api/openapi.json", "/api/docs", "/index.html", "/nope"]


@pytest.mark.parametrize("path", GUARDED)
def test_every_endpoint_needs_a_session(server: Server, path: str) -> None:
    code, headers, _ = server.request("GET", path)
    assert code == 401 and headers["www-authenticate"] == "Bearer"
    code, headers, _ = server.request("GET", path, headers={"Accept": "text/html"})
    assert (code, headers["location"]) == (303, f"/login?next={path}")
    assert server.request("GET", path, headers={"Authorization": "Bearer forged.jwt.token"})[0] == 401


def test_state_changes_need_a_session_too(server: Server) -> None:
    assert server.request("POST", "/api/streams", {"uri": "0"})[0] == 401
    assert server.request("DELETE", "/api/streams/cam")[0] == 401
    assert server.calls == [] or all(isinstance(c, ListStreams) for c in server.calls)


def test_the_login_page_is_open_and_the_cookie_is_strict(server: Server) -> None:
    code, headers, body = server.request("GET", "/login")
    assert code == 200 and b'type="password"' in body
    code, headers, _ = server.request("POST", "/login", {"username": "vic", "password": PASSWORDS["vic"]})
    cookie = headers["set-cookie"].lower()
    assert code == 200 and all(flag in cookie for flag in ("httponly", "samesite=strict", "secure", "max-age=43200"))


def test_a_viewer_watches_but_cannot_change(server: Server) -> None:
    cookie, csrf, token = server.sign_in("vic")
    for auth in ({"Cookie": cookie}, {"Authorization": f"Bearer {token}"}):
        assert server.request("GET", "/status.json", headers=auth)[0] == 200
        code, _, jpeg = server.request("GET", "/snapshot/cam.jpg", headers=auth)
        assert code == 200 and jpeg[:2] == b"\xff\xd8"
        assert json.loads(server.request("GET", "/api/me", headers=auth)[2])["role"] == "viewer"
        code, _, body = server.request("POST", "/api/streams", {"uri": "0"}, headers={**auth, "X-CSRF-Token": csrf})
        assert code == 403 and "viewer" in json.loads(body)["error"]
        assert server.request("DELETE", "/api/streams/cam", headers={**auth, "X-CSRF-Token": csrf})[0] == 403


def test_an_admin_changes_with_csrf_and_same_origin_only(server: Server) -> None:
    cookie, csrf, token = server.sign_in("ada")
    me = json.loads(server.request("GET", "/api/me", headers={"Cookie": cookie})[2])
    assert me == {"user": "ada", "role": "admin", "csrf": csrf, "auth": True}
    body = {"uri": "rtsp://cam/s", "name": "new"}
    assert server.request("POST", "/api/streams", body, headers={"Cookie": cookie})[0] == 403  # no CSRF token
    assert server.request("POST", "/api/streams", body, headers={"Cookie": cookie, "X-CSRF-Token": "x"})[0] == 403
    cross = {"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    assert server.request("POST", "/api/streams", body, headers=cross)[0] == 403
    n = len(server.calls)
    assert server.request("POST", "/api/streams", body, headers={"Cookie": cookie, "X-CSRF-Token": csrf})[0] == 201
    assert server.request("POST", "/api/streams", body, headers={"Authorization": f"Bearer {token}"})[0] == 201
    assert server.request("DELETE", "/api/streams/new", headers={"Authorization": "Bearer service-token-123"})[0] == 200
    assert [type(c) for c in server.calls[n:]] == [AddStream, AddStream, RemoveStream]


def test_a_new_password_or_removal_ends_sessions(server: Server, tmp_path: Path) -> None:
    server.users.set("eve", "eve-password-1", "viewer", new=True)
    PASSWORDS["eve"] = "eve-password-1"
    cookie, _, token = server.sign_in("eve")
    assert server.request("GET", "/status.json", headers={"Cookie": cookie})[0] == 200
    server.users.set("eve", "eve-password-2")
    assert server.request("GET", "/status.json", headers={"Cookie": cookie})[0] == 401
    PASSWORDS["eve"] = "eve-password-2"
    cookie, _, token = server.sign_in("eve")
    server.users.remove("eve")
    assert server.request("GET", "/status.json", headers={"Authorization": f"Bearer {token}"})[0] == 401


def test_ten_wrong_passwords_are_slowed_down(server: Server) -> None:
    codes = [server.request("POST", "/login", {"username": "ada", "password": f"guess-{i}"})[0] for i in range(10)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    code, headers, body = server.request("POST", "/login", {"username": "ada", "password": PASSWORDS["ada"]})
    assert code == 429 and int(headers["retry-after"]) >= 1 and "wait" in json.loads(body)["error"]
    server.view.guard.throttle.succeeded(server.host)  # the other tests sign in from this address too


def test_plain_http_on_the_tls_port_gets_nothing(server: Server) -> None:
    conn = http.client.HTTPConnection(server.host, server.view.port, timeout=5)
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", "/status.json")
        conn.getresponse()
    conn.close()


def test_a_given_certificate_is_served_and_metrics_may_be_public(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "mine", "127.0.0.1")
    live = LiveSettings(http_host="127.0.0.1", auth=True, metrics_public=True, tls_cert=str(cert), tls_key=str(key))
    access = settle_access(live, tmp_path / "out")
    assert access.tls == (cert, key) and (tmp_path / "out" / "users.json").exists()  # the first admin
    context = ssl.create_default_context(cafile=str(cert))
    with LiveView("127.0.0.1", 0, guard=access.guard, tls=access.tls) as view:
        assert view.url.startswith("https://127.0.0.1:")
        conn = http.client.HTTPSConnection("127.0.0.1", view.port, context=context, timeout=5)
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        assert r.status == 200  # live.metrics_public: no session needed
        r.read()
        der = conn.sock.getpeercert(binary_form=True)
        assert ssl.DER_cert_to_PEM_cert(der).strip() == cert.read_text().strip()
        conn.request("GET", "/status.json")
        r2 = conn.getresponse()
        assert r2.status == 401
        r2.read()
        conn.close()
    assert len(fingerprint(cert.read_bytes()).split(":")) == 32


def test_first_admin_password_is_printed_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    live = LiveSettings(auth=True)
    settle_access(live, tmp_path)
    settle_access(live, tmp_path)
    lines = [r.getMessage() for r in caplog.records if "sign in as admin" in r.getMessage()]
    assert len(lines) == 1
    password = lines[0].split("with password ")[1].split()[0]
    assert UserStore(tmp_path / "users.json").verify("admin", password) is not None


def test_sign_in_off_on_loopback_keeps_the_token_rule(tmp_path: Path) -> None:
    access = settle_access(LiveSettings(api_token="tok-123"), tmp_path)
    assert access.guard.sessions is None and access.tls is None and not (tmp_path / "users.json").exists()

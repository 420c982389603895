"""Who may reach a live run's server, settled from its settings: sign-in on or off, the users
file (with a first admin made when it has no user), the service token, and TLS.

Sign-in is on when live.auth says so, or (auto) exactly when the server listens beyond loopback;
so is TLS (the configured certificate, else a self-signed one). The first admin's password is
printed once, in the log, when the users file is made; `vidpipe users passwd admin` changes it.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from vidpipe.stages.live_settings import LiveSettings
from vidpipe.stages.web.guard import Guard
from vidpipe.stages.web.sessions import Sessions
from vidpipe.stages.web.tls import tls_files
from vidpipe.stages.web.users import UserStore, first_admin

log = logging.getLogger(__name__)

USERS_FILE = "users.json"


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def auth_on(live: LiveSettings) -> bool:
    return live.auth if live.auth is not None else not loopback(live.http_host)


def users_path(live: LiveSettings, out_dir: str | Path) -> Path:
    return Path(live.users_file) if live.users_file else Path(out_dir) / USERS_FILE


@dataclass(frozen=True)
class Access:
    guard: Guard
    tls: tuple[Path, Path] | None


def settle_access(live: LiveSettings, out_dir: str | Path, announce: bool = True) -> Access:
    """The guard and TLS files for the live view (makes the first admin and a certificate if needed;
    `announce`: log the certificate, as the job does once at start)."""
    tls = tls_files(live.tls_cert, live.tls_key, Path(out_dir), live.http_host, not loopback(live.http_host),
                    announce)
    if not auth_on(live):
        return Access(Guard(None, live.api_token, live.metrics_public, tls is not None), tls)
    users = UserStore(users_path(live, out_dir))
    if password := first_admin(users):
        log.warning("live view: sign-in is on and %s had no user: sign in as admin with password %s "
                    "(shown once; change it with: vidpipe users passwd admin --users %s)",
                    users.path, password, users.path)
    sessions = Sessions(users, live.session_hours, live.api_token)
    return Access(Guard(sessions, live.api_token, live.metrics_public, tls is not None), tls)

"""The live view's users: one JSON file (OUT/users.json or live.users_file), written by
`vidpipe users add/passwd/remove` and read by the server, which notices changes at once.

    {"version": 1, "session_key": "<64 hex>",
     "users": {"alice": {"role": "admin", "hash": "pbkdf2_sha256$600000$<salt hex>$<hash hex>",
                         "created": "2026-12-07T03:00:00+00:00"}}}

Passwords are hashed with PBKDF2-HMAC-SHA256 (the standard library's hashlib, OpenSSL underneath),
600,000 iterations as OWASP advises for it, a 16-byte random salt per password; checked in
constant time. `session_key` signs the session tokens (stages.web.sessions): it lives with the
users so a restarted server keeps everyone signed in, and only whoever can read this file (mode
0600) could forge one. Writes are atomic (a temporary file, then rename).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROLES = ("admin", "viewer")
ITERATIONS = 600_000
ALGORITHM = "pbkdf2_sha256"
MIN_PASSWORD = 8


class UsersError(ValueError):
    """A users file that cannot be read or changed as asked (one line)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    hash: str
    created: str = ""

    @property
    def stamp(self) -> str:
        """Changes with the password: a session made before `passwd` no longer counts."""
        return hashlib.sha256(self.hash.encode()).hexdigest()[:16]


def hash_password(password: str, iterations: int = ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{ALGORITHM}${iterations}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        algorithm, iterations, salt, digest = stored.split("$")
        if algorithm != ALGORITHM:
            return False
        given = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(given.hex(), digest)


def check_name(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise UsersError(f"user name {name!r}: use 1..64 letters, digits and . _ - @")


class UserStore:
    """The users file; thread-safe. Reads again when the file changed on disk (by the CLI)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: int | None = None
        self._loaded = False
        self._users: dict[str, User] = {}
        self._key = b""

    def _data(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"version": 1, "session_key": secrets.token_hex(32), "users": {}}
        except (OSError, ValueError) as exc:
            raise UsersError(f"{self.path}: cannot read the users file: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("users"), dict) or not data.get("session_key"):
            raise UsersError(f"{self.path}: not a vidpipe users file")
        return data

    def _refresh(self) -> None:
        try:
            mtime: int | None = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if self._loaded and mtime == self._mtime:
            return
        data = self._data()
        self._users = {name: User(name, u.get("role", "viewer"), u.get("hash", ""), u.get("created", ""))
                       for name, u in data["users"].items()}
        if mtime is not None or not self._key:  # no file yet: one key for this process until there is
            self._key = bytes.fromhex(data["session_key"])
        self._mtime, self._loaded = mtime, True

    def get(self, name: str) -> User | None:
        with self._lock:
            self._refresh()
            return self._users.get(name)

    def users(self) -> list[User]:
        with self._lock:
            self._refresh()
            return sorted(self._users.values(), key=lambda u: u.name)

    @property
    def session_key(self) -> bytes:
        with self._lock:
            self._refresh()
            return self._key

    def verify(self, name: str, password: str) -> User | None:
        """The user, if the password is theirs. Costs a PBKDF2 even for an unknown name (no timing hint)."""
        user = self.get(name)
        ok = check_password(password, user.hash if user else _dummy_hash())
        return user if ok and user else None

    def set(self, name: str, password: str, role: str | None = None, *, new: bool = False) -> User:
        """Add (new=True) or change a user; `role` None keeps theirs."""
        check_name(name)
        if len(password) < MIN_PASSWORD:
            raise UsersError(f"password for {name}: at least {MIN_PASSWORD} characters")
        with self._lock:
            data = self._data()
            old = data["users"].get(name)
            if new and old is not None:
                raise UsersError(f"{self.path}: user {name} exists (change the password: vidpipe users passwd {name})")
            if not new and old is None:
                raise UsersError(f"{self.path}: no user {name} (add one: vidpipe users add {name})")
            role = role or (old or {}).get("role", "viewer")
            if role not in ROLES:
                raise UsersError(f"role {role!r}: expected admin or viewer")
            created = (old or {}).get("created") or datetime.now(UTC).isoformat(timespec="seconds")
            data["users"][name] = {"role": role, "hash": hash_password(password), "created": created}
            self._write(data)
            return User(name, role, data["users"][name]["hash"], created)

    def remove(self, name: str) -> None:
        with self._lock:
            data = self._data()
            if data["users"].pop(name, None) is None:
                raise UsersError(f"{self.path}: no user {name}")
            self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".users.", dir=self.path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._loaded = False  # read back on next use


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(8))


def first_admin(store: UserStore) -> str | None:
    """When the file has no user: an `admin` with a generated password, returned (to print once)."""
    if store.users():
        return None
    password = secrets.token_urlsafe(12)
    store.set("admin", password, "admin", new=True)
    return password

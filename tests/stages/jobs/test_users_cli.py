"""`vidpipe users add/passwd/list/remove` on a real users file, as the live server reads it."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from vidpipe.stages.jobs.cli import main
from vidpipe.stages.web.users import UserStore


def users(argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["users", *argv])


def test_add_list_passwd_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert users(["add", "alice", "--role", "admin", "--password-stdin", "-o", str(out)], monkeypatch,
                 "first-password\n") == 0
    assert users(["add", "tv", "--password-stdin", "-o", str(out)], monkeypatch, "viewer-password\n") == 0
    path = out / "users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "first-password" not in path.read_text()  # only the hash is stored
    store = UserStore(path)
    assert store.verify("alice", "first-password") is not None and store.get("tv").role == "viewer"  # type: ignore[union-attr]
    capsys.readouterr()
    assert users(["list", "--json", "-o", str(out)], monkeypatch) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(u["name"], u["role"]) for u in listed] == [("alice", "admin"), ("tv", "viewer")]
    assert users(["passwd", "alice", "--password-stdin", "--users", str(path)], monkeypatch, "second-password\n") == 0
    assert store.verify("alice", "first-password") is None and store.verify("alice", "second-password") is not None
    assert store.get("alice").role == "admin"  # type: ignore[union-attr]
    assert users(["remove", "tv", "-o", str(out)], monkeypatch) == 0
    assert [u.name for u in store.users()] == ["alice"]


def test_mistakes_are_one_line_and_change_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "out")
    assert users(["add", "alice", "--password-stdin", "-o", out], monkeypatch, "first-password\n") == 0
    before = (tmp_path / "out" / "users.json").read_bytes()
    capsys.readouterr()
    cases = [
        (["add", "alice", "--password-stdin", "-o", out], "first-password\n", 1, "user alice exists"),
        (["add", "bob", "--password-stdin", "-o", out], "short\n", 1, "at least 8 characters"),
        (["add", "bob", "-o", out], "", 2, "--password-stdin"),  # no terminal to ask on
        (["passwd", "nobody", "--password-stdin", "-o", out], "some-password\n", 1, "no user nobody"),
        (["add", "bad/name", "--password-stdin", "-o", out], "some-password\n", 1, "user name"),
        (["remove", "nobody", "-o", out], "", 1, "no user nobody"),
    ]
    for argv, stdin, code, message in cases:
        assert users(argv, monkeypatch, stdin) == code, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert (tmp_path / "out" / "users.json").read_bytes() == before


def test_the_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "live.yaml"
    config.write_text(f"job: live\nlive:\n  users_file: {tmp_path / 'etc' / 'people.json'}\n")
    assert users(["add", "ops", "--role", "admin", "--password-stdin", "-c", str(config)], monkeypatch,
                 "ops-password-1\n") == 0
    assert UserStore(tmp_path / "etc" / "people.json").get("ops") is not None

"""Shared fixtures: every multiprocess test runs under spawn and fork; leaks are checked."""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

faulthandler.enable()  # a hung test dumps its stacks when pytest-timeout fires


@pytest.fixture(params=["spawn", "fork"])
def start_method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def vidpipe_segments() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("vidpipe_*")} if Path("/dev/shm").is_dir() else set()


def leaked_segments(before: set[str]) -> set[str]:
    """Segments made since `before` whose creator (its pid is in the name) is this process or no
    longer runs: a leak. Other vidpipe runs on the machine may come and go meanwhile."""
    leaked = set()
    for name in vidpipe_segments() - before:
        pid = int(name.split("_")[1]) if name.split("_")[1].isdigit() else -1
        if pid == os.getpid() or not Path(f"/proc/{pid}").exists():
            leaked.add(name)
    return leaked


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fails the test if it leaves a child process or a vidpipe shared-memory segment behind."""
    before = vidpipe_segments()
    yield
    children = multiprocessing.active_children()
    for child in children:
        child.kill()
    assert not children, f"child processes left behind: {children}"
    leaked = leaked_segments(before)
    assert not leaked, f"shared memory left in /dev/shm: {leaked}"
    assert os.getpid() > 0

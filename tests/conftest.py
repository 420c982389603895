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


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fails the test if it leaves a child process or a vidpipe shared-memory segment behind."""
    before = vidpipe_segments()
    yield
    children = multiprocessing.active_children()
    for child in children:
        child.kill()
    assert not children, f"child processes left behind: {children}"
    # Rings are created by the process that runs the supervisor (this one) and named after it; other
    # test runs on the machine may come and go meanwhile.
    leaked = {name for name in vidpipe_segments() - before if name.startswith(f"vidpipe_{os.getpid()}_")}
    assert not leaked, f"shared memory left in /dev/shm: {leaked}"
    assert os.getpid() > 0

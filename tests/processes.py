"""Watching a vidpipe job from outside, as the fault tests do: its children, a condition on its
files, and its end. A job that does not end in time fails the test with the stacks of every
process of its tree (vidpipe dumps them on SIGUSR1), so a hang seen once in CI says where it waited."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

VIDPIPE = [sys.executable, "-m", "vidpipe"]  # the console script, as a user runs it
# a private mount namespace (a tmpfs over a folder, seen by this command only); non-root via a user namespace
UNSHARE_MOUNT = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--mount"]


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def descendants(pid: int) -> list[int]:
    found = children(pid)
    for child in list(found):
        found += descendants(child)
    return found


def finish(proc: subprocess.Popen[str], timeout: float) -> str:
    """`proc`'s stderr once it has exited; fails with its tree's stacks if it runs past `timeout`."""
    try:
        return proc.communicate(timeout=timeout)[1] or ""
    except subprocess.TimeoutExpired:
        tree = [proc.pid, *descendants(proc.pid)]
        states = {pid: state(pid) for pid in tree}
        for pid in tree:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGUSR1)
        time.sleep(1.0)  # the dumps are written by the processes themselves
        for pid in tree:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            err = proc.communicate(timeout=10)[1] or ""
        except subprocess.TimeoutExpired:
            err = "(stderr still open)"
        pytest.fail(f"{proc.args!r} still ran after {timeout} s; process states {states}; stderr:\n{err[-30000:]}")


def wait_for_child(pid: int, name: str) -> int:
    """The pid of `pid`'s child whose process name (a stage's, e.g. vp:preprocess-0) holds `name`."""
    found: list[int] = []

    def look() -> bool:
        for child in children(pid):
            with contextlib.suppress(OSError), open(f"/proc/{child}/comm") as comm:
                if name in comm.read():
                    found.append(child)
                    return True
        return False

    wait_for(look)
    return found[0]


def state(pid: int) -> str:
    """R running, S sleeping, T stopped... ('gone' once reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return "gone"


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)  # watching another process from outside: nothing to block on

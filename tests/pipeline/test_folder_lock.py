"""pipeline.folder_lock: one holder at a time, the holder named, nothing stale after kill -9."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vidpipe.pipeline.errors import ConfigError
from vidpipe.pipeline.folder_lock import LOCK_NAME, FolderBusy, FolderLock

HOLD = "import sys, time; from vidpipe.pipeline.folder_lock import FolderLock; FolderLock.acquire(sys.argv[1]); " \
       "print('held', flush=True); time.sleep(60)"


def test_a_second_holder_is_refused_in_one_line_naming_the_first(tmp_path: Path) -> None:
    with FolderLock.acquire(tmp_path) as lock:
        assert lock.held
        with pytest.raises(FolderBusy) as busy:
            FolderLock.acquire(tmp_path)  # the same process: flock locks belong to the open file
        message = str(busy.value)
        assert isinstance(busy.value, ConfigError) and busy.value.key == "output.dir"
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in message and "\n" not in message
    assert not lock.held
    FolderLock.acquire(tmp_path).release()  # free again once released
    assert json.loads((tmp_path / LOCK_NAME).read_text() or "{}") == {}  # no stale holder named


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match=f"pid {proc.pid} on host"):
            FolderLock.acquire(tmp_path)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    FolderLock.acquire(tmp_path).release()  # the kernel released it with the process

"""One job per folder: an advisory lock held for the job's life.

    with FolderLock.acquire(out, "output.dir"):     # FolderBusy if another job holds it
        ...                                        # the job writes into `out`

The lock is `flock` on FOLDER/.vidpipe.lock: the kernel releases it when the last descriptor of the
holder closes, so a job killed with `kill -9` (or a power cut) never leaves a stale lock behind,
and the file itself is never removed (removing a lock file races with the next job taking it).
flock locks belong to an open file, not to a process: two jobs in one Python process exclude
each other too. The holder writes its pid, host and start time into the file so that the job it
refuses can say who has the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from vidpipe.pipeline.errors import ConfigError

LOCK_NAME = ".vidpipe.lock"


class FolderBusy(ConfigError):
    """Another job holds the folder's lock: nothing was written."""


class FolderLock:
    """Held from `acquire` until `release` (or the end of the `with` block, or the process)."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder, self._fd = folder, fd

    @classmethod
    def acquire(cls, folder: str | Path, key: str = "output.dir") -> FolderLock:
        """Take `folder`'s lock without waiting; FolderBusy (one line naming the holder) if taken."""
        path = Path(folder) / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise FolderBusy(f"{key}: {folder} is in use by another vidpipe job ({holder}): wait for it to end, "
                             f"or choose another folder", key=key) from None
        except BaseException:
            os.close(fd)
            raise
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        return cls(Path(folder), fd)

    def release(self) -> None:
        """Idempotent; the lock file stays (see the module docstring)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # no stale holder to name once the job is over
            os.close(self._fd)  # closing the last descriptor releases the lock
            self._fd = -1

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _holder(fd: int) -> str:
    """Who holds the lock, from what it wrote: `pid 123 on host h since ...`."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "its pid is not recorded yet"
    return f"pid {info['pid']} on host {info.get('host', '?')}, since {info.get('started', '?')}"

"""uvicorn, run in a thread of the calling process (the live sink), on a socket bound first so that
a busy port is an error at once and port 0 tells which port it got.

uvicorn is told not to touch logging (log_config=None: vidpipe's handlers stay) nor signals (it
only installs them on the main thread), and not to trust X-Forwarded-For (the sign-in brake counts
failures per real client address). Shutdown waits GRACE_S for open responses, then cancels them.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import anyio.to_thread
import uvicorn

GRACE_S = 3
START_TIMEOUT_S = 10.0
WORKER_THREADS = 256  # each MJPEG client holds one while it waits for the next frame


class ThreadedServer:
    def __init__(self, app: Any, host: str, port: int, tls: tuple[Path, Path] | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family)  # SO_REUSEADDR: a restart rebinds
        self.port: int = self.socket.getsockname()[1]
        cert, key = (str(tls[0]), str(tls[1])) if tls else (None, None)
        config = uvicorn.Config(_MoreThreads(app), log_config=None, log_level="warning", access_log=False,
                                lifespan="off", proxy_headers=False, ssl_certfile=cert, ssl_keyfile=key,
                                timeout_graceful_shutdown=GRACE_S, timeout_keep_alive=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="liveview-http")

    def _run(self) -> None:
        self.server.run(sockets=[self.socket])

    def start(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            self.close()
            raise RuntimeError("the live view's server did not start")
        return self

    def close(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(GRACE_S + 5.0)
        self.socket.close()


class _MoreThreads:
    """Raises the event loop's worker-thread limit (anyio's default, 40, would cap MJPEG clients)
    on the first request: the limiter belongs to the loop, which exists only then."""

    def __init__(self, app: Any) -> None:
        self.app, self.tuned = app, False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.tuned:
            anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
            self.tuned = True
        await self.app(scope, receive, send)

"""The `vidpipe` console script. A Ctrl-C while Python is still importing vidpipe (the first
half second) is an interruption like any later one: exit 130, one line, no traceback."""

from __future__ import annotations

import signal
import sys

from vidpipe.stages.jobs.exits import EXIT_INTERRUPTED


def main() -> int:
    try:
        # a Ctrl-C while native modules load (numpy under cv2) would surface as an ImportError:
        # it waits until they are in, then interrupts as any other
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            from vidpipe.stages.jobs.cli import main as run
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return run()
    except KeyboardInterrupt:
        print("vidpipe: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

"""The `vidpipe` console script. A Ctrl-C while Python is still importing vidpipe (the first
half second) is an interruption like any later one: exit 130, one line, no traceback."""

from __future__ import annotations

import sys

from vidpipe.stages.jobs.exits import EXIT_INTERRUPTED


def main() -> int:
    try:
        from vidpipe.stages.jobs.cli import main as run

        return run()
    except KeyboardInterrupt:
        print("vidpipe: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

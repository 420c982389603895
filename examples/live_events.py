"""Watch live sources from Python: print each label change as it happens, add a stream on the way.

    python examples/live_events.py SOURCE... [--seconds 20] [--add URI]

SOURCE is what `vidpipe live` takes (a camera index, rtsp://..., a video file, which is looped
here). Label events arrive in `on_event` on a thread of this process; the job never waits for it.
"""

from __future__ import annotations

import argparse
import sys
import threading

import vidpipe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+")
    parser.add_argument("--seconds", type=float, default=20.0, help="stop after this long")
    parser.add_argument("--add", help="a source to add once the first label is known")
    parser.add_argument("--backend", default="cpu")
    args = parser.parse_args()
    first = threading.Event()

    def on_event(event: vidpipe.LiveEvent) -> None:
        if event.kind == "label":
            print(f"{event.data['time_iso']} {event.stream}: {event.label} ({event.data['score']:.2f})", flush=True)
            first.set()

    sources = [{"uri": s, "loop": not s.isdigit() and "://" not in s} for s in args.sources]
    with vidpipe.live(sources, on_event=on_event, backend=args.backend) as cam:
        if args.add and first.wait(args.seconds):
            cam.add_stream(args.add, name="added", loop=True)
            print("streams:", ", ".join(s["name"] for s in cam.streams()), flush=True)
        cam.join(args.seconds)  # then the with-block stops it: every file is finalized
    return 0


if __name__ == "__main__":
    sys.exit(main())

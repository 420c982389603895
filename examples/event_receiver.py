"""A webhook receiver for `vidpipe live`'s label events: prints one line per event.

    python examples/event_receiver.py [--port 9000]
    # in the live config:  live: {events: {webhook: "http://127.0.0.1:9000/"}}

vidpipe POSTs each event as JSON (see stages/outputs/events.py for the fields) and retries with
back-off when the receiver answers 5xx or is down; a slow receiver never slows the pipeline.
Binds 127.0.0.1 only: put a proxy with TLS and authentication in front of anything exposed.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EventHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        try:
            event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        except ValueError:
            self.send_error(400, "not JSON")
            return
        self.send_response(204)
        self.end_headers()
        print(describe(event), flush=True)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per event is the output; no access log


def describe(event: dict) -> str:
    if event.get("type") == "label":
        was = f" (was {event['previous']})" if event.get("previous") else ""
        return f"{event['time_iso']} {event['stream']}: {event['label']} {event['score']:.2f}{was}"
    return f"{event.get('time_iso', '')} {event.get('stream', '')}: {event.get('type')} {json.dumps(event)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000, help="0: any free port (printed)")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), EventHandler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`vidpipe devices [--config FILE] [--json]`: what can run inference here, one row each (every
registered backend: Alveo cards and whether each can run the configured xclbin, the cpu model,
sim, the emulated card, plug-ins). On a terminal the state column wraps to its width, so the part
that says what to do is never cut off; --json gives the rows to scripts."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

from vidpipe.hw.registry import list_devices
from vidpipe.hw.settings import BackendSettings
from vidpipe.stages.config import load_job
from vidpipe.stages.jobs.base import EXIT_OK
from vidpipe.stages.jobs.progress import format_table


def print_devices(config: Path | None = None, as_json: bool = False) -> int:
    settings = load_job(config).backend if config is not None else BackendSettings()
    devices = list_devices(settings)
    if as_json:
        json.dump([asdict(d) for d in devices], sys.stdout, indent=1)
        print()
        return EXIT_OK
    rows = [[d.backend, d.name, d.state] for d in devices]
    if not sys.stdout.isatty():
        print(format_table(["backend", "device", "state"], rows, sys.maxsize))
        return EXIT_OK
    first = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(("backend", "device"))]
    room = max(30, shutil.get_terminal_size().columns - sum(first) - 4)
    print(f"{'backend'.ljust(first[0])}  {'device'.ljust(first[1])}  state")
    print(f"{'-' * first[0]}  {'-' * first[1]}  {'-' * min(room, 40)}")
    for backend, name, state in rows:
        lines = textwrap.wrap(state, room) or [""]
        print(f"{backend.ljust(first[0])}  {name.ljust(first[1])}  {lines[0]}")
        for more in lines[1:]:
            print(f"{' ' * (sum(first) + 4)}{more}")
    return EXIT_OK

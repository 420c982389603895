"""`vidpipe devices`: what can run inference here, one line each."""

from __future__ import annotations

from vidpipe.hw.registry import list_devices
from vidpipe.stages.jobs.base import EXIT_OK
from vidpipe.stages.jobs.progress import print_table


def print_devices() -> int:
    rows = [[d.backend, d.name, d.state] for d in list_devices()]
    print_table(["backend", "device", "state"], rows)
    return EXIT_OK

"""`vidpipe devices`: what can run inference on this machine."""

from __future__ import annotations

from hw.registry import list_devices
from stages.progress import print_table


def print_devices() -> int:
    rows = [[d.backend, d.name, d.state] for d in list_devices()]
    print_table(["backend", "device", "state"], rows)
    return 0

"""The graph the supervisor runs, as data: tiers of stage processes (frozen, picklable).

    Tier("preprocess", (ProcSpec("preprocess-0", stage), ...), inbox=pre_q, restart=policy)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.recovery import RestartPolicy
from vidpipe.pipeline.stage import Stage


@dataclass(frozen=True)
class ProcSpec:
    """One stage process: `stage.run(ctx)` runs in it (the stage pickles under spawn)."""

    name: str
    stage: Stage[Any]


@dataclass(frozen=True)
class Tier:
    name: str
    procs: tuple[ProcSpec, ...]
    inbox: Channel | None = None  # gets one STOP per process when the previous tier is done
    max_running: int = 0  # 0: start all at once
    restart: RestartPolicy | None = None  # None: a crash stops everything; else crashed processes restart
    open: bool = False  # processes may be added while it runs (add_process): done only after stop_sources

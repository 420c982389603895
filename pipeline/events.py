"""Typed events from stage processes to the supervisor's process: frozen dataclasses, never
string-keyed dicts. A stage sends one with `ctx.report(event)`; the supervisor handles
`StageFailure` itself and hands every other event to the job's `on_event`.

The runtime knows only this base and StageFailure; the domain's events (progress, a source's
problem, a stream done...) live in stages.events.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """Base of every event a stage reports."""

    def to_dict(self) -> dict[str, Any]:
        return {"event": type(self).__name__, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class StageFailure(Event):
    """A stage raised: one line for the user, the traceback text for the log."""

    stage: str
    detail: str
    traceback: str = ""
    user_error: bool = False  # a VidpipeError (no card, bad weights...): the traceback is not news

"""Sender `sqlite`: each live label event appended to the table `events` of a SQLite file.

    live:
      events:
        extra:
          sqlite: {path: events.db}      # relative to the output folder

Runs on the sender's own thread (vidpipe's Sender: a bounded queue, never blocking the sink).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from vidpipe.stages.outputs.notify import Sender
from vidpipe.stages.outputs.senders import SenderContext, SenderSpec


@dataclass(frozen=True)
class SqliteOptions:
    path: str = "events.db"  # relative to output.dir
    table: str = "events"


class SqliteSender(Sender):
    name = "sqlite"

    def __init__(self, context: SenderContext) -> None:
        super().__init__(context.settings.queue_size, context.metrics)
        options = context.options_as(SqliteOptions)
        if not options.table.isidentifier():
            raise ValueError(f"live.events.extra.sqlite.table: {options.table!r} is not a table name")
        self.path, self.table = context.out_dir / options.path, options.table
        self._db: sqlite3.Connection | None = None

    def deliver(self, event: dict[str, Any]) -> None:
        if self._db is None:  # made on the sender's thread, which alone uses it
            self._db = sqlite3.connect(self.path, check_same_thread=False)  # closed by close(), after the thread
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {self.table} "
                             "(stream TEXT, type TEXT, label TEXT, time REAL, event TEXT)")
        self._db.execute(f"INSERT INTO {self.table} VALUES (?, ?, ?, ?, ?)",
                         (event.get("stream"), event.get("type"), event.get("label"), event.get("time"),
                          json.dumps(event)))
        self._db.commit()
        self.metrics.event(self.name, "sent")

    def close(self, grace_s: float = 2.0) -> None:
        super().close(grace_s)
        if self._db is not None:
            self._db.close()


SPEC = SenderSpec("sqlite", "label events appended to a SQLite table", lambda ctx: SqliteSender(ctx).start(),
                  options=SqliteOptions)

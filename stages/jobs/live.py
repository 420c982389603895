"""Live classification: cameras, streams, image folders and real-time files, several at once,
batched together on one accelerator, until Ctrl-C (exit 0) or every source has ended.

Latest policy (bounded latency): each source keeps only its newest frame, preprocess drops
frames older than `live.stale_after_ms`, queues are short; every drop is counted.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.channels import Channel
from pipeline.errors import ConfigError
from pipeline.events import Event
from pipeline.redact import mask_url
from pipeline.shm import SlotRing
from pipeline.supervisor import ProcSpec
from stages.config import JobConfig
from stages.events import SourceProblem
from stages.jobs.base import EXIT_FAILED, EXIT_OK, GraphShape
from stages.outputs.display import probe_display
from stages.outputs.live import LiveOutputsFactory
from stages.sink import OutputsFactory
from stages.sources.live import LiveSourceParams, LiveSourceStage
from stages.sources.naming import stream_name, unique_stream_names

log = logging.getLogger(__name__)


class LiveJob:
    """`vidpipe live`: see the module docstring and stages.jobs.base for the protocol."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.failed: dict[str, str] = {}  # stream -> one-line error
        self.names: list[str] = []

    def prepare(self) -> GraphShape:
        live = self.config.live
        if not live.sources:
            raise ConfigError("live: no sources (give them on the command line or in live.sources)", key="live.sources")
        if live.display:
            probe_display()  # no screen: one line now, not a failed sink later
        self.names = unique_stream_names([f"{stream_name(s)}.x" for s in live.sources])
        Path(self.config.output.dir).mkdir(parents=True, exist_ok=True)
        for name, source in zip(self.names, live.sources, strict=True):
            log.info("source %s: %s", name, mask_url(source.uri))
        # a frame waiting in a queue is latency: keep live queues short
        queue_size = min(self.config.runtime.queue_size, max(2, self.config.backend.max_batch))
        return GraphShape(live.max_width * live.max_height * 3, queue_size, 0, live.stale_after_ms / 1000.0)

    def sources(self, frames: SlotRing, outbox: Channel) -> list[ProcSpec]:
        live = self.config.live
        return [
            ProcSpec(
                f"source:{name}",
                LiveSourceStage(LiveSourceParams(name, source, frames, live.max_width, live.max_height), outbox=outbox),
            )
            for name, source in zip(self.names, live.sources, strict=True)
        ]

    def outputs(self) -> OutputsFactory:
        return LiveOutputsFactory(self.config.live, self.config.output)

    def on_event(self, event: Event) -> None:
        if isinstance(event, SourceProblem):
            self.failed[event.stream] = event.message
            log.error("%s", event.message)

    def close(self) -> None:
        pass

    def exit_code(self, interrupted: bool) -> int:
        return EXIT_FAILED if self.failed else EXIT_OK

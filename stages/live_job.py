"""Live classification: cameras, streams, folders and real-time files, until Ctrl-C.

Bounded latency instead of losslessness: each source keeps only its newest frame, preprocess
drops frames older than `live.stale_after_ms`, and every drop is counted. One source failing
never stops the others; the job ends when every source has ended, or on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from pipeline.channels import Channel
from pipeline.errors import ConfigError
from pipeline.redact import mask_url
from pipeline.shm import SlotRing
from pipeline.supervisor import ProcSpec
from stages.config import JobConfig, SourceSettings
from stages.display import probe_display
from stages.graph import plan, run_graph
from stages.label_job import unique_stream_names
from stages.live_feed import LiveSourceSpec, run_live_source
from stages.live_outputs import LiveOutputsFactory
from stages.live_source import source_kind

log = logging.getLogger(__name__)


def stream_name(source: SourceSettings) -> str:
    """A short, file-name-safe id: the configured name, cam0, host_path, or the file stem."""
    if source.name:
        return source.name
    kind = source_kind(source.uri)
    if kind == "camera":
        return "cam" + re.sub(r"\D", "", source.uri)
    if kind == "url":
        rest = re.sub(r"^[a-zA-Z][\w+.-]*://([^@/]*@)?", "", source.uri).split("?")[0]
        return re.sub(r"[^\w.-]+", "_", rest).strip("_")[:40] or "stream"
    return Path(source.uri.rstrip("/")).stem or "source"


def run_live_job(job: JobConfig, log_queue: Any, log_level: int) -> int:
    sources = job.live.sources
    if not sources:
        raise ConfigError("live: no sources (give them on the command line or in live.sources)")
    if job.live.display:
        probe_display()  # no screen: one line now, not a failed sink later
    names = unique_stream_names([f"{stream_name(s)}.x" for s in sources])
    Path(job.output.dir).mkdir(parents=True, exist_ok=True)
    graph = plan(job, job.live.max_width * job.live.max_height * 3)
    failed: dict[str, str] = {}
    for name, source in zip(names, sources, strict=True):
        log.info("source %s: %s", name, mask_url(source.uri))

    def make_sources(frames: SlotRing, out: Channel) -> list[ProcSpec]:
        return [
            ProcSpec(
                f"source:{name}",
                run_live_source,
                (LiveSourceSpec(name, source, job.live.max_width, job.live.max_height), frames, out),
            )
            for name, source in zip(names, sources, strict=True)
        ]

    def on_event(kind: str, stage: str, data: dict[str, Any]) -> None:
        if kind == "source_error":
            failed[data["stream"]] = data["message"]
            log.error("%s", data["message"])

    run_graph(
        job,
        graph,
        make_sources,
        LiveOutputsFactory(job),
        on_event,
        log_queue,
        log_level,
        stale_after_s=job.live.stale_after_ms / 1000.0,
    )
    return 1 if failed else 0

"""Batch video labeling: files and folders in, per-video JSONL / segments / annotated H.264 out.

Every decodable frame is labeled exactly once and in order (block policy: nothing dropped).
A bad input (missing, empty, corrupt, truncated) gets one line naming it; the others are still
processed in full and the exit code says that something failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from pipeline.channels import Channel
from pipeline.errors import SourceError
from pipeline.shm import SlotRing
from pipeline.supervisor import ProcSpec
from stages.config import JobConfig
from stages.file_source import VideoInfo, find_videos, probe, run_file_source
from stages.graph import plan, run_graph
from stages.label_outputs import LabelOutputsFactory
from stages.progress import ProgressBars, print_table

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass
class JobReport:
    """What the main process learns from the stages' events."""

    failed: dict[str, str] = field(default_factory=dict)  # input -> one-line error
    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # stream -> stream_done data


def unique_stream_names(paths: list[str]) -> list[str]:
    """File stems, made unique (clip, clip-2, ...) so outputs never overwrite each other."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        stem = Path(p).stem or "video"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def probe_inputs(inputs: list[str], report: JobReport) -> list[VideoInfo]:
    paths, errors = find_videos(inputs)
    for message in errors:
        report.failed[message.split(":")[0]] = message
        log.error("%s", message)
    infos = []
    for path, stream in zip(paths, unique_stream_names(paths), strict=True):
        try:
            infos.append(probe(path, stream))
        except SourceError as exc:
            report.failed[path] = str(exc)
            log.error("%s", exc)
    return infos


def run_label_job(job: JobConfig, log_queue: Any, log_level: int) -> int:
    report = JobReport()
    infos = probe_inputs(list(job.inputs), report)
    if not infos:
        log.error("nothing to label: no readable video among the inputs")
        return EXIT_FAILED
    Path(job.output.dir).mkdir(parents=True, exist_ok=True)
    graph = plan(job, max(i.width * i.height * 3 for i in infos))
    bars = ProgressBars(job.output.progress)

    def sources(frames: SlotRing, out: Channel) -> list[ProcSpec]:
        return [ProcSpec(f"decode:{i.stream}", run_file_source, (i, frames, out)) for i in infos]

    def on_event(kind: str, stage: str, data: dict[str, Any]) -> None:
        if kind == "progress":
            bars.update(**data)
        elif kind == "source_error":
            report.failed[data["stream"]] = data["message"]
            log.error("%s", data["message"])
        elif kind == "stream_done":
            bars.close(data["stream"])
            report.done[data["stream"]] = data

    try:
        sup = run_graph(job, graph, sources, LabelOutputsFactory(job), on_event, log_queue, log_level)
    finally:
        bars.close()
        _remove_partial_outputs(job.output.dir, infos)
    _print_summary(infos, report, job.output.dir)
    if sup.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if report.failed else EXIT_OK


def _remove_partial_outputs(out_dir: str, infos: list[VideoInfo]) -> None:
    """A sink killed mid-write leaves NAME.*.part files: never leave a half-written output."""
    for info in infos:
        for part in Path(out_dir).glob(f"{glob_escape(info.stream)}.*.part"):
            log.warning("removing the unfinished %s", part)
            part.unlink(missing_ok=True)


def _print_summary(infos: list[VideoInfo], report: JobReport, out_dir: str) -> None:
    rows = []
    for info in infos:
        d = report.done.get(info.stream, {})
        seconds = d.get("seconds", 0.0)
        fps = d.get("frames", 0) / seconds if seconds else 0.0
        top = ", ".join(f"{name} {share:.0%}" for name, share in d.get("summary", {}).get("top", [])[:3])
        status = report.failed.get(info.stream) or d.get("error") or "ok"
        rows.append([info.stream, str(d.get("frames", 0)), f"{fps:.1f}", top or "-", status.split(": ", 1)[-1]])
    for path, message in report.failed.items():
        if path not in {i.stream for i in infos}:
            rows.append([Path(path).name, "0", "-", "-", message.split(": ", 1)[-1]])
    print_table(["video", "frames", "fps", "labels (share of time)", "status"], rows)
    print(f"outputs in {Path(out_dir)}")

"""Batch video labeling: files and folders in, per-video JSONL / segments / annotated H.264 out.

Every decodable frame is labeled exactly once and in order (block policy: nothing dropped).
A bad input (missing, empty, corrupt, truncated) gets one line naming it; the others are still
processed in full and the exit code says that something failed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.errors import SourceError
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.redact import printable
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.supervisor import ProcSpec
from vidpipe.stages.config import JobConfig
from vidpipe.stages.events import StreamDone
from vidpipe.stages.jobs.base import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, GraphPlan, GraphShape, NothingToDo
from vidpipe.stages.jobs.inputs import plan_inputs, save_manifest
from vidpipe.stages.jobs.label_graph import LabelGraph, splittable
from vidpipe.stages.jobs.label_record import JobReport, LabelRecord
from vidpipe.stages.jobs.manifest import VideoEntry
from vidpipe.stages.jobs.profile import print_profile
from vidpipe.stages.jobs.progress import ProgressBars, print_table
from vidpipe.stages.jobs.summary import padding_note
from vidpipe.stages.outputs.summary import VideoSummary
from vidpipe.stages.sink import OutputsFactory
from vidpipe.stages.sources.files import VideoInfo, largest_frame_bytes

log = logging.getLogger(__name__)


class NoInputs(SourceError):
    """No input can be labeled: each failed input has said why, in one line (the CLI adds none)."""

    def __init__(self, failed: dict[str, str]) -> None:
        super().__init__("nothing to label: " + ("; ".join(failed.values()) or "no video among the inputs"))


class LabelJob:
    """`vidpipe label`: see the module docstring and stages.jobs.base for the protocol. It plans the
    inputs and composes the graph (LabelGraph) and the record (LabelRecord) that watch, a Ray
    worker and the bench share. `resume`: keep the videos an earlier run of this job finished
    (verified), redo the rest. `config`: settled (stages.jobs.api.settle_config)."""

    def __init__(self, config: JobConfig, resume: bool = False, profile: bool = False, table: bool = True) -> None:
        self.config = config
        self.resume = resume
        self.table = table  # print the summary table at the end (the CLI; the Python API has the rows)
        self.rows: list[VideoSummary] = []  # the job's summary, once finish() wrote it
        self.profile = profile  # print the per-image upload/accelerator/download table at the end
        self.show_hosts = False  # the table names each video's host: a StreamDone came from another (Ray)
        self.graph = LabelGraph(config)
        self.record = LabelRecord(config)
        self.infos: list[VideoInfo] = []
        self.kept: list[tuple[str, VideoEntry]] = []
        self.bars = ProgressBars(config.output.progress)

    @property
    def report(self) -> JobReport:
        return self.record.report

    def prepare(self) -> GraphShape:
        manifest, previous = self.record.open_output(create=False)
        plan = plan_inputs(self.config, manifest, previous, self.resume, self.report, save=False)
        if plan.run and self.record.lock is None:  # a new output folder: made now that there is work for it
            made, _ = self.record.open_output(create=True)
            if made.path.exists():  # another job made it meanwhile: plan again with its manifest
                self.release()
                self.record = LabelRecord(self.config)
                return self.prepare()
            self.record.manifest = manifest
        if self.record.lock is not None:
            save_manifest(manifest)
        self.infos, self.kept = plan.run, plan.kept
        for path, why in plan.again.items():
            log.info("%s: labeling again: %s", printable(path), why)
        for info in self.infos if self.config.output.video else ():
            if note := padding_note(info.width, info.height):
                log.info("%s: %s", info.stream, note)
        self.record.inputs = {i.stream: os.path.abspath(i.path) for i in self.infos}
        for _path, entry in self.kept:
            log.info("%s: done in an earlier run, kept (input, settings and outputs verified)", entry.name)
        if not self.infos:
            if self.kept:
                raise NothingToDo(f"all {len(self.kept)} videos were done already")
            raise NoInputs(self.report.failed)
        self.bars.start(len(self.infos), sum(i.frame_count for i in self.infos))
        split = any(splittable(self.config, i.frame_count) for i in self.infos)
        return self.graph.shape(largest_frame_bytes(self.infos), len(self.infos), split=split)

    def release(self) -> None:
        self.record.release()

    def sources(self, frames: SlotRing, outbox: Channel) -> list[ProcSpec]:
        return self.graph.file_decoders(frames, outbox, self.infos)

    def outputs(self, plan: GraphPlan) -> OutputsFactory:
        return self.graph.outputs()

    def on_event(self, event: Event) -> None:
        self.bars.on_event(event)
        self.record.on_event(event)
        if isinstance(event, StreamDone) and event.host:
            self.show_hosts = True

    def close(self) -> None:
        self.bars.close()
        self.graph.close()
        self.record.close()

    def finish(self, interrupted: bool) -> None:
        """The job's summary.csv/.json, report and table; the --profile table."""
        self.rows = self.record.write_summary()
        if self.table:
            print_summary(self.rows, {entry.name for _path, entry in self.kept}, Path(self.config.output.dir),
                          self.show_hosts)
        if self.profile:
            out = Path(self.config.output.dir)
            print_profile([out / f"{i.stream}.jsonl" for i in self.infos if (out / f"{i.stream}.jsonl").is_file()],
                          self.config.backend.batch)

    def exit_code(self, interrupted: bool) -> int:
        if interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.report.failed else EXIT_OK


def print_summary(rows: list[VideoSummary], kept: set[str], out: Path, show_hosts: bool = False) -> None:
    """The job's table on the terminal (`kept`: videos done in an earlier run) and where its report is."""
    table = []
    for row in rows:
        top = ", ".join(f"{name} {share:.0%}" for name, share in row.top[:3]) or "-"
        fps = f"{row.labeling_fps:.1f}" if row.labeling_fps and row.video not in kept else "-"
        status = "ok" if row.status == "done" and not row.error else row.status
        status += " (kept)" if row.video in kept else f": {row.error}" if row.error else ""
        table.append([row.video, str(row.frames), fps, top, status, *([row.host] if show_hosts else [])])
    print_table(["video", "frames", "labeled fps", "labels (share of time)", "status",
                 *(["host"] if show_hosts else [])], table)
    report = f"report: {out / 'index.html'}" if (out / "index.html").is_file() else "no report was written"
    print(f"{report} (outputs in {out})")

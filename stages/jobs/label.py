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

from pipeline.channels import Channel
from pipeline.errors import SourceError
from pipeline.events import Event
from pipeline.shm import SlotRing
from pipeline.supervisor import ProcSpec
from stages.config import JobConfig
from stages.events import Progress, SourceProblem, StreamDone
from stages.jobs.base import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, GraphShape
from stages.jobs.progress import ProgressBars, print_table
from stages.outputs.label import LabelOutputsFactory
from stages.sink import OutputsFactory
from stages.sources.files import FileSourceParams, FileSourceStage, VideoInfo, find_videos, probe
from stages.sources.naming import unique_stream_names

log = logging.getLogger(__name__)


@dataclass
class JobReport:
    """What the main process learns about the inputs, keyed by input path."""

    failed: dict[str, str] = field(default_factory=dict)  # input path -> one-line error
    done: dict[str, StreamDone] = field(default_factory=dict)  # stream -> its StreamDone

    def fail(self, path: str, message: str) -> None:
        self.failed[path] = message
        log.error("%s", message)


def probe_inputs(inputs: list[str], report: JobReport) -> list[VideoInfo]:
    """Every readable video among `inputs` (folders expanded); the others go to `report`."""
    paths, errors = find_videos(inputs)
    for error in errors:
        report.fail(error.path, str(error))
    infos = []
    for path, stream in zip(paths, unique_stream_names(paths), strict=True):
        try:
            infos.append(probe(path, stream))
        except SourceError as exc:
            report.fail(path, str(exc))
    return infos


class LabelJob:
    """`vidpipe label`: see the module docstring and stages.jobs.base for the protocol."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.report = JobReport()
        self.infos: list[VideoInfo] = []
        self.bars = ProgressBars(config.output.progress)

    def prepare(self) -> GraphShape:
        self.infos = probe_inputs(list(self.config.inputs), self.report)
        if not self.infos:
            raise SourceError("nothing to label: no readable video among the inputs")
        Path(self.config.output.dir).mkdir(parents=True, exist_ok=True)
        runtime = self.config.runtime
        biggest = max(i.width * i.height * 3 for i in self.infos)
        return GraphShape(biggest, runtime.queue_size, runtime.max_open_sources)

    def sources(self, frames: SlotRing, outbox: Channel) -> list[ProcSpec]:
        return [
            ProcSpec(f"decode:{i.stream}", FileSourceStage(FileSourceParams(i, frames), outbox=outbox))
            for i in self.infos
        ]

    def outputs(self) -> OutputsFactory:
        return LabelOutputsFactory(self.config.output, self.config.postprocess)

    def on_event(self, event: Event) -> None:
        if isinstance(event, Progress):
            self.bars.update(event.stream, event.done, event.total)
        elif isinstance(event, SourceProblem):
            self.report.fail(event.path, event.message)
        elif isinstance(event, StreamDone):
            self.bars.close(event.stream)
            self.report.done[event.stream] = event

    def close(self) -> None:
        self.bars.close()
        self._remove_partial_outputs()

    def exit_code(self, interrupted: bool) -> int:
        self._print_summary()
        if interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.report.failed else EXIT_OK

    def _remove_partial_outputs(self) -> None:
        """A sink killed mid-write leaves NAME.*.part files: never leave a half-written output."""
        for info in self.infos:
            for part in Path(self.config.output.dir).glob(f"{glob_escape(info.stream)}.*.part"):
                log.warning("removing the unfinished %s", part)
                part.unlink(missing_ok=True)

    def _print_summary(self) -> None:
        rows = []
        for info in self.infos:
            done = self.report.done.get(info.stream)
            frames, seconds = (done.frames, done.seconds) if done else (0, 0.0)
            top = ", ".join(f"{name} {share:.0%}" for name, share in done.summary.top[:3]) if done else ""
            status = self.report.failed.get(info.path) or (done.error if done else "") or "ok"
            fps = f"{frames / seconds:.1f}" if seconds else "0.0"
            rows.append([info.stream, str(frames), fps, top or "-", status.split(": ", 1)[-1]])
        probed = {i.path for i in self.infos}
        for path, message in self.report.failed.items():
            if path not in probed:
                rows.append([Path(path).name, "0", "-", "-", message.split(": ", 1)[-1]])
        print_table(["video", "frames", "fps", "labels (share of time)", "status"], rows)
        print(f"outputs in {Path(self.config.output.dir)}")

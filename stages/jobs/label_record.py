"""The record half of a label job, which label, watch, a Ray worker and the bench compose: what
the job learns from its graph, and its output folder's manifest.

    record = LabelRecord(config)
    manifest, previous = record.open_output()     # the folder locked, its manifest loaded
    record.inputs[stream] = manifest key          # the videos it records (prepare / planning)
    record.on_event(event)                        # failures, warnings, StreamDones -> manifest
    record.close()                                # the last group commit, half-written outputs removed
    record.write_summary()                        # summary.csv/.json, index.html: an explicit step
    record.release()                              # the folder's lock

Without open_output() (a Ray worker, the bench) it only gathers the report: no manifest, no lock.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidpipe.hw.registry import model_needed, result_fingerprint
from vidpipe.pipeline.errors import one_line
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.folder_lock import FolderLock
from vidpipe.pipeline.redact import printable
from vidpipe.stages.config import JobConfig
from vidpipe.stages.events import SourceProblem, SourceWarning, StreamDone
from vidpipe.stages.jobs.inputs import remove_parts
from vidpipe.stages.jobs.manifest import GroupCommit, Manifest, fingerprint
from vidpipe.stages.jobs.summary import collect_rows, write_job_summary
from vidpipe.stages.outputs.label import output_names
from vidpipe.stages.outputs.summary import VideoSummary
from vidpipe.stages.outputs.writers import check_output_dir, ensure_output_dir

log = logging.getLogger(__name__)


@dataclass
class JobReport:
    """What the main process learns about the inputs, keyed by input path."""

    failed: dict[str, str] = field(default_factory=dict)  # input path -> one-line error
    warnings: dict[str, str] = field(default_factory=dict)  # stream -> one line (damaged frames)
    done: dict[str, StreamDone] = field(default_factory=dict)  # stream -> its StreamDone

    def fail(self, path: str, message: str) -> None:
        self.failed[path] = message
        log.error("%s", message)


def result_settings(config: JobConfig) -> dict[str, Any]:
    """Every setting that changes what a video's outputs contain (not where or how fast)."""
    backend = result_fingerprint(config.backend)
    model = model_needed(config.backend)
    if model is not None:
        backend["model"] = fingerprint(model, model.stat().st_size) if model.is_file() else str(model)
    out = config.output
    return {
        "backend": backend,
        "preprocess": {"resize": config.preprocess.resize},
        "postprocess": asdict(config.postprocess),
        "output": {"jsonl": out.jsonl, "segments": out.segments, "video": out.video,
                   "video_preset": out.video_preset, "video_crf": out.video_crf},
    }


class LabelRecord:
    """See the module docstring."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.report = JobReport()
        self.manifest: Manifest | None = None
        self.inputs: dict[str, str] = {}  # stream -> manifest key (absolute input path)
        self.lock: FolderLock | None = None  # the output folder's, from open_output() to release()
        self.commit: GroupCommit | None = None  # finished videos to the manifest (commits)

    def open_output(self, create: bool = True) -> tuple[Manifest, dict[str, Any] | None]:
        """The output folder locked for this job (FolderBusy if another job has it) and its manifest
        loaded (self.manifest), with the settings of the manifest's earlier run. A folder that does
        not exist is made only with `create`; else an empty manifest is planned with, unlocked."""
        folder = Path(self.config.output.dir).expanduser()
        if create or folder.is_dir():
            folder = ensure_output_dir(self.config.output.dir)
            self.lock = FolderLock.acquire(folder, "output.dir")
        else:
            check_output_dir(self.config.output.dir)  # a file there, no permission: one line now
        self.manifest, previous = Manifest.load(folder, result_settings(self.config))
        return self.manifest, previous

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def on_event(self, event: Event) -> None:
        if isinstance(event, SourceProblem):
            self.report.fail(event.path, event.message)
        elif isinstance(event, SourceWarning):
            log.warning("%s: %s", printable(event.path), event.message)
            self.report.warnings[event.stream] = event.message
        elif isinstance(event, StreamDone):
            self.report.done[event.stream] = event
            self._record(event)

    def _record(self, done: StreamDone) -> None:
        """The manifest learns that a video's outputs are published (and their checksums); it
        reaches the disk with the next group commit."""
        if self.manifest is None or done.stream not in self.inputs:
            return
        entry = self.manifest.videos[self.inputs[done.stream]]
        try:
            outputs = self.manifest.checksums(output_names(entry.name, self.config.output))
        except OSError as exc:  # an output gone unreadable: not recorded, so --resume redoes it
            log.error("%s: cannot read its outputs (%s): --resume will label it again", entry.name, exc.strerror)
            return
        with self.commits().change():
            entry.frames, entry.error, entry.seconds = done.frames, done.error, round(done.seconds, 3)
            entry.warning = self.report.warnings.get(done.stream, "")
            entry.state = "done" if not done.error else "incomplete" if done.cut_short else "failed"
            entry.outputs, entry.host = outputs, done.host or socket.gethostname()

    def commits(self) -> GroupCommit:
        """The manifest's group commit (made at the first change of a run, closed by close())."""
        assert self.manifest is not None
        if self.commit is None:
            self.commit = GroupCommit(self.manifest, self.config.runtime.manifest_interval_s)
        return self.commit

    def close(self) -> None:
        """After the graph: the last group of finished videos reaches the manifest, and a sink
        killed mid-write leaves no NAME.*.part file behind."""
        if self.commit is not None:
            self.commit.close()
        for stream in self.inputs:
            remove_parts(Path(self.config.output.dir), stream)

    def write_summary(self) -> list[VideoSummary]:
        """summary.csv/.json, index.html and thumbnails from the manifest: every video of the folder,
        kept ones included. A problem writing them is one line; the labeling outputs stand."""
        if self.manifest is None:
            return []
        try:
            return write_job_summary(self.manifest.folder, self.manifest, self.report.failed)
        except OSError as exc:
            log.error("%s: the job summary and report were not written: %s", self.manifest.folder, one_line(exc))
            return collect_rows(self.manifest.folder, self.manifest, self.report.failed)

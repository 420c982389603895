"""Batch video labeling: files and folders in, per-video JSONL / segments / annotated H.264 out.

Every decodable frame is labeled exactly once and in order (block policy: nothing dropped).
A bad input (missing, empty, corrupt, truncated) gets one line naming it; the others are still
processed in full and the exit code says that something failed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidpipe.hw.registry import model_needed, result_fingerprint
from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.errors import SourceError, one_line
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.folder_lock import FolderLock
from vidpipe.pipeline.machine import usable_cores
from vidpipe.pipeline.redact import printable
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.supervisor import ProcSpec
from vidpipe.stages.config import JobConfig, max_open_sources, with_job_defaults
from vidpipe.stages.events import Progress, SourceProblem, SourceWarning, StreamDone
from vidpipe.stages.jobs.base import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, GraphPlan, GraphShape, NothingToDo
from vidpipe.stages.jobs.inputs import plan_inputs, remove_parts, save_manifest
from vidpipe.stages.jobs.manifest import GroupCommit, Manifest, VideoEntry, fingerprint
from vidpipe.stages.jobs.profile import print_profile
from vidpipe.stages.jobs.progress import ProgressBars, print_table
from vidpipe.stages.jobs.summary import collect_rows, padding_note, write_job_summary
from vidpipe.stages.outputs.chunks import chunk_length
from vidpipe.stages.outputs.encoder import EncodeStage
from vidpipe.stages.outputs.label import LabelOutputsFactory, output_names
from vidpipe.stages.outputs.summary import VideoSummary
from vidpipe.stages.outputs.writers import check_output_dir, ensure_output_dir
from vidpipe.stages.sink import OutputsFactory
from vidpipe.stages.sources.files import FileQueue, FileSourceParams, FileSourceStage, VideoInfo

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


def label_encoders(config: JobConfig, files: int, split: bool = False) -> int:
    """Encoder processes for the annotated videos: `output.encoders`, else one per file decoded at
    once, at most one per core (a stream is encoded by one process, in order), or one per core when
    a video is long enough to be split (its chunks are encoded at once); 0 without video."""
    if not config.output.video:
        return 0
    if config.output.encoders:
        return config.output.encoders
    if split:
        return max(1, usable_cores())
    return max(1, min(files, max_open_sources(config), usable_cores()))


def splittable(config: JobConfig, frame_count: int) -> bool:
    """Whether a video this long is encoded in chunks when several encoders run (stages.outputs.split)."""
    chunk = config.output.video_chunk_frames
    return config.output.video and chunk > 0 and frame_count >= 2 * chunk_length(chunk)


class NoInputs(SourceError):
    """No input can be labeled: each failed input has said why, in one line (the CLI adds none)."""

    def __init__(self, failed: dict[str, str]) -> None:
        super().__init__("nothing to label: " + ("; ".join(failed.values()) or "no video among the inputs"))


class LabelJob:
    """`vidpipe label`: see the module docstring and stages.jobs.base for the protocol.
    `resume`: keep the videos an earlier run of this job finished (verified), redo the rest."""

    def __init__(self, config: JobConfig, resume: bool = False, profile: bool = False, table: bool = True) -> None:
        self.config = with_job_defaults(config)
        self.resume = resume
        self.table = table  # print the summary table at the end (the CLI; the Python API has the rows)
        self.rows: list[VideoSummary] = []  # the job's summary, once finish() wrote it
        self.profile = profile  # print the per-image upload/accelerator/download table at the end
        self.show_hosts = False  # the summary table names the host that labeled each video (a Ray job)
        self.report = JobReport()
        self.infos: list[VideoInfo] = []
        self.kept: list[tuple[str, VideoEntry]] = []
        self.inputs: dict[str, str] = {}  # stream -> manifest key (absolute input path)
        self.bars = ProgressBars(config.output.progress)
        self.manifest: Manifest | None = None
        self.encoders = 0  # encoder processes (prepare)
        self.lock: FolderLock | None = None  # the output folder's, from prepare() to close()
        self.files: FileQueue | None = None  # the decode workers' queue (sources)
        self.commit: GroupCommit | None = None  # finished videos to the manifest (commits)

    def prepare(self) -> GraphShape:
        manifest, previous = self.open_output(create=False)
        plan = plan_inputs(self.config, manifest, previous, self.resume, self.report, save=False)
        if plan.run and self.lock is None:  # a new output folder: made now that there is work for it
            made, _ = self.open_output(create=True)
            if made.path.exists():  # another job made it meanwhile: plan again with its manifest
                self.release()
                self.report = JobReport()
                return self.prepare()
            self.manifest = manifest
        if self.lock is not None:
            save_manifest(manifest)
        self.infos, self.kept = plan.run, plan.kept
        for path, why in plan.again.items():
            log.info("%s: labeling again: %s", printable(path), why)
        for info in self.infos if self.config.output.video else ():
            if note := padding_note(info.width, info.height):
                log.info("%s: %s", info.stream, note)
        self.inputs = {i.stream: os.path.abspath(i.path) for i in self.infos}
        for _path, entry in self.kept:
            log.info("%s: done in an earlier run, kept (input, settings and outputs verified)", entry.name)
        if not self.infos:
            if self.kept:
                raise NothingToDo(f"all {len(self.kept)} videos were done already")
            raise NoInputs(self.report.failed)
        self.bars.start(len(self.infos), sum(i.frame_count for i in self.infos))
        split = any(splittable(self.config, i.frame_count) for i in self.infos)
        return self.shape(max(i.width * i.height * 3 for i in self.infos), len(self.infos), split=split)

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

    def shape(self, max_frame_bytes: int, files: int, open_sources: bool = False, split: bool = False) -> GraphShape:
        """The graph of a label job (also watch's and a Ray task's): `files` decoded at most at
        once, and the encoder processes of the annotated videos for them (`split`: a video among
        them is long enough to be encoded in chunks by every core)."""
        runtime = self.config.runtime
        self.encoders = label_encoders(self.config, files, split)
        return GraphShape(max_frame_bytes, runtime.queue_size, max_open_sources(self.config), open_sources=open_sources,
                          encoders=self.encoders, encoder=EncodeStage)

    def sources(self, frames: SlotRing, outbox: Channel) -> list[ProcSpec]:
        """Decode workers (as many as files open at once, fewer for fewer files) that take the
        job's files in order from one queue: the interpreter start-up is paid per worker."""
        workers = min(len(self.infos), max_open_sources(self.config))
        files = self.file_queue()
        for info in self.infos:
            files.put(info)
        files.end(workers)
        return self.decoders(frames, outbox, workers)

    def file_queue(self) -> FileQueue:
        self.files = FileQueue(multiprocessing.get_context(self.config.runtime.start_method))
        return self.files

    def decoders(self, frames: SlotRing, outbox: Channel, workers: int) -> list[ProcSpec]:
        assert self.files is not None
        params = FileSourceParams(self.files, frames, self.config.preprocess.max_damaged_share)
        return [ProcSpec(f"decode-{n}", FileSourceStage(params, outbox=outbox)) for n in range(workers)]

    def outputs(self, plan: GraphPlan) -> OutputsFactory:
        return LabelOutputsFactory(self.config.output, self.config.postprocess, self.encoders)

    def on_event(self, event: Event) -> None:
        if isinstance(event, Progress):
            self.bars.update(event.stream, event.done, event.total, event.fps)
        elif isinstance(event, SourceProblem):
            self.report.fail(event.path, event.message)
        elif isinstance(event, SourceWarning):
            log.warning("%s: %s", printable(event.path), event.message)
            self.report.warnings[event.stream] = event.message
        elif isinstance(event, StreamDone):
            self.bars.close(event.stream, event.error)
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
        cut_short = done.error == "interrupted" or done.error.startswith("cut short")
        with self.commits().change():
            entry.frames, entry.error, entry.seconds = done.frames, done.error, round(done.seconds, 3)
            entry.warning = self.report.warnings.get(done.stream, "")
            entry.state = "done" if not done.error else "incomplete" if cut_short else "failed"
            entry.outputs, entry.host = outputs, done.host or socket.gethostname()

    def commits(self) -> GroupCommit:
        """The manifest's group commit (made at the first change of a run, closed by close())."""
        assert self.manifest is not None
        if self.commit is None:
            self.commit = GroupCommit(self.manifest, self.config.runtime.manifest_interval_s)
        return self.commit

    def close(self) -> None:
        self.bars.close()
        if self.files is not None:
            self.files.close()
        if self.commit is not None:
            self.commit.close()  # the last group of finished videos
        self._remove_partial_outputs()

    def finish(self, interrupted: bool) -> None:
        """The job's summary.csv/.json, report and table; the --profile table."""
        self.rows = self._write_summary()
        if self.table:
            self._print_summary(self.rows)
        if self.profile:
            out = Path(self.config.output.dir)
            print_profile([out / f"{i.stream}.jsonl" for i in self.infos if (out / f"{i.stream}.jsonl").is_file()],
                          self.config.backend.batch)

    def exit_code(self, interrupted: bool) -> int:
        if interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.report.failed else EXIT_OK

    def _remove_partial_outputs(self) -> None:
        """A sink killed mid-write leaves NAME.*.part files: never leave a half-written output."""
        for info in self.infos:
            remove_parts(Path(self.config.output.dir), info.stream)

    def _write_summary(self) -> list[VideoSummary]:
        """summary.csv/.json, index.html and thumbnails from the manifest: every video of the folder,
        kept ones included. A problem writing them is one line; the labeling outputs stand."""
        if self.manifest is None:
            return []
        try:
            return write_job_summary(self.manifest.folder, self.manifest, self.report.failed)
        except OSError as exc:
            log.error("%s: the job summary and report were not written: %s", self.manifest.folder, one_line(exc))
            return collect_rows(self.manifest.folder, self.manifest, self.report.failed)

    def _print_summary(self, rows: list[VideoSummary]) -> None:
        kept = {entry.name for _path, entry in self.kept}
        table = []
        for row in rows:
            top = ", ".join(f"{name} {share:.0%}" for name, share in row.top[:3]) or "-"
            fps = f"{row.labeling_fps:.1f}" if row.labeling_fps and row.video not in kept else "-"
            status = "ok" if row.status == "done" and not row.error else row.status
            status += " (kept)" if row.video in kept else f": {row.error}" if row.error else ""
            table.append([row.video, str(row.frames), fps, top, status, *([row.host] if self.show_hosts else [])])
        print_table(["video", "frames", "labeled fps", "labels (share of time)", "status",
                     *(["host"] if self.show_hosts else [])], table)
        out = Path(self.config.output.dir)
        report = f"report: {out / 'index.html'}" if (out / "index.html").is_file() else "no report was written"
        print(f"{report} (outputs in {out})")

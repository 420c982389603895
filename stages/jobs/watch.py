"""`vidpipe watch DIR --out OUT`: label video files as they arrive, exactly once, until Ctrl-C.

    scanner thread (main process): every watch.poll_s, the folder's video files and their size
        and mtime; a file unchanged for watch.settle_s is complete -> its path on a pipe
    supervisor thread (the pipe is watched): plan it like `label --resume` would (the job
        manifest: a file labeled before, in this run or an earlier one, and unchanged, is kept),
        then put it on the queue of the decode workers (as a label job's, but never ended)

The graph starts once and stays up: new files pay no start-up. Frame slots are sized up front
(watch.max_width x max_height); a larger video fails in one line. A file that changes after it
was labeled is labeled again, with one line saying why. Ctrl-C drains what is under way and ends
with exit 0 (1 if some file failed).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.errors import ConfigError
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.redact import printable
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.supervisor import ProcSpec, Supervisor
from vidpipe.stages.config import JobConfig, max_open_sources
from vidpipe.stages.jobs.base import EXIT_FAILED, EXIT_OK, GraphPlan, GraphShape
from vidpipe.stages.jobs.inputs import plan_inputs, vidpipe_outputs
from vidpipe.stages.jobs.label import print_summary
from vidpipe.stages.jobs.label_graph import LabelGraph
from vidpipe.stages.jobs.label_record import JobReport, LabelRecord
from vidpipe.stages.jobs.manifest import VideoEntry
from vidpipe.stages.jobs.progress import ProgressBars
from vidpipe.stages.outputs.summary import VideoSummary
from vidpipe.stages.sink import OutputsFactory
from vidpipe.stages.sources.files import VIDEO_EXTENSIONS, VideoInfo

log = logging.getLogger(__name__)


class FolderScanner:
    """The scanner thread of the module docstring; `close()` stops and joins it."""

    def __init__(self, folder: Path, poll_s: float, settle_s: float, send: Connection) -> None:
        self.folder, self.poll_s, self.settle_s, self.send = folder, poll_s, settle_s, send
        self.seen: dict[Path, tuple[int, int, float]] = {}  # path -> (size, mtime_ns, since when)
        self.sent: dict[Path, tuple[int, int]] = {}  # path -> the (size, mtime_ns) it was sent with
        self.skip = vidpipe_outputs()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="watch-scanner", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                self._scan(time.monotonic())
                self.stop.wait(self.poll_s)  # the scan period; close() ends the wait at once
        except (OSError, EOFError):
            pass  # the supervisor closed its end: the job is over

    def _scan(self, now: float) -> None:
        for path in sorted(self.folder.rglob("*")):
            if path.suffix.lower() not in VIDEO_EXTENSIONS or self.skip(path):
                continue
            try:
                st = path.stat()
            except OSError:
                continue  # gone again
            state = (st.st_size, st.st_mtime_ns)
            seen = self.seen.get(path)
            if seen is None or seen[:2] != state:
                self.seen[path] = (*state, now)
            elif now - seen[2] >= self.settle_s and self.sent.get(path) != state and st.st_size > 0:
                self.sent[path] = state
                self.send.send(str(path))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


class WatchJob:
    """See the module docstring: the label job's graph (LabelGraph) and record (LabelRecord), with
    sources that arrive while it runs (a Service)."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.graph = LabelGraph(config)
        self.record = LabelRecord(config)
        self.infos: list[VideoInfo] = []  # every file labeled in this run
        self.kept: list[tuple[str, VideoEntry]] = []
        self.rows: list[VideoSummary] = []  # the summary, once finish() wrote it
        self.bars = ProgressBars(config.output.progress)
        self.supervisor: Supervisor | None = None
        self.scanner: FolderScanner | None = None
        self.previous: dict[str, Any] | None = None  # the settings of the manifest's earlier run

    @property
    def report(self) -> JobReport:
        return self.record.report

    def prepare(self) -> GraphShape:
        folder = Path(self.config.inputs[0]) if self.config.inputs else None
        if folder is None or not folder.is_dir():
            raise ConfigError(f"watch: {printable(str(folder))} is not a folder", key="inputs")
        _manifest, self.previous = self.record.open_output()
        w = self.config.watch
        return self.graph.shape(w.max_width * w.max_height * 3, max_open_sources(self.config), open_sources=True)

    def sources(self, frames: SlotRing, outbox: Channel) -> list[ProcSpec]:
        return self.graph.decoders(frames, outbox, max_open_sources(self.config))

    def outputs(self, plan: GraphPlan) -> OutputsFactory:
        return self.graph.outputs()

    def on_event(self, event: Event) -> None:
        self.bars.on_event(event)
        self.record.on_event(event)

    def attach(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        receive, send = multiprocessing.Pipe(duplex=False)
        supervisor.watch(receive, lambda: self._arrived(receive.recv()))
        w = self.config.watch
        self.scanner = FolderScanner(Path(self.config.inputs[0]), w.poll_s, w.settle_s, send)
        log.info("watching %s (Ctrl-C to stop)", printable(self.config.inputs[0]))

    def _arrived(self, path: str) -> None:
        """A complete file (supervisor thread): plan it, then hand it to the decode workers."""
        manifest = self.record.manifest
        assert manifest is not None
        with self.record.commits().change(now=True):  # planned entries are on disk before their outputs
            plan = plan_inputs(replace(self.config, inputs=(path,)), manifest, self.previous, True, self.report,
                               save=False)
        for key, entry in plan.kept:
            if key not in {k for k, _ in self.kept}:
                self.kept.append((key, entry))
                log.info("%s: done in an earlier run, kept", entry.name)
        for path, why in plan.again.items():
            name = manifest.videos[os.path.abspath(path)].name
            log.info("%s changed since it was labeled: labeling again (%s)", printable(name), why)
        for info in plan.run:
            if not self._fits(info):
                continue
            self.report.failed.pop(info.path, None)  # labeled again: an earlier failure is history
            self.infos.append(info)
            self.record.inputs[info.stream] = os.path.abspath(info.path)
            log.info("%s: labeling", printable(info.path))
            self.graph.put(info)

    def _fits(self, info: VideoInfo) -> bool:
        w = self.config.watch
        if info.width * info.height <= w.max_width * w.max_height:
            return True
        message = (f"{printable(info.path)}: {info.width}x{info.height} frames are larger than "
                   f"watch.max_width x watch.max_height ({w.max_width}x{w.max_height})")
        self.report.fail(info.path, message)
        assert self.record.manifest is not None
        with self.record.commits().change():
            entry = self.record.manifest.videos[os.path.abspath(info.path)]
            entry.state, entry.error = "failed", message
        return False

    def close(self) -> None:
        if self.scanner is not None:
            self.scanner.close()
        self.bars.close()
        self.graph.close()
        self.record.close()

    def finish(self, interrupted: bool) -> None:
        """The summary of the folder (every video the manifest has), as a label job's."""
        self.rows = self.record.write_summary()
        print_summary(self.rows, {entry.name for _path, entry in self.kept}, Path(self.config.output.dir))

    def exit_code(self, interrupted: bool) -> int:
        """Ctrl-C is how a watch ends: 0 unless a file failed."""
        return EXIT_FAILED if self.report.failed else EXIT_OK

    def release(self) -> None:
        self.record.release()

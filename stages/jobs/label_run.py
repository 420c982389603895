"""`vidpipe.label(...)`'s handle: a label job on a thread of the caller's process, its frames'
labels iterable as they are produced, its summary at the end.

    run = vidpipe.label("clip.mp4")
    for r in run:                # FrameResult, in order per video, as the sink writes them
        ...
    summary = run.summary()      # JobSummary: waits for the end; raises the job's error
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from vidpipe.pipeline.events import Event
from vidpipe.stages.events import FrameResult, FrameResults
from vidpipe.stages.jobs.feed import Feed
from vidpipe.stages.jobs.handles import JobRun, Runner
from vidpipe.stages.jobs.label import LabelJob
from vidpipe.stages.jobs.results import JobSummary, VideoResult

RESULTS_BUFFER = 200_000  # frames waiting for the caller's loop (about 60 MB); more are dropped and counted


class LabelRun(JobRun):
    """See the module docstring. `scratch`: a temporary output folder (out=None), removed at the end."""

    def __init__(self, job: LabelJob, runner: Runner, log_level: int, scratch: Path | None = None) -> None:
        super().__init__(job, runner, log_level)
        self.label_job = job
        self.scratch = scratch
        self.results: Feed[FrameResult] = Feed(RESULTS_BUFFER)
        self._summary: JobSummary | None = None

    def __iter__(self) -> Iterator[FrameResult]:
        """Each frame's labels as they are produced; ends with the job (then see summary())."""
        try:
            yield from self.results
        except KeyboardInterrupt:
            self._drain_after_interrupt()
            raise
        if self._error is not None:
            self.join()  # raises it

    def summary(self, timeout: float | None = None) -> JobSummary:
        """Waits for the end (TimeoutError after `timeout`); raises the job's error, if any."""
        if not self.join(timeout):
            raise TimeoutError(f"the label job did not end within {timeout} s")
        assert self._summary is not None
        return self._summary

    def _event(self, event: Event) -> None:
        if isinstance(event, FrameResults):
            for result in event.results:
                self.results.put(result)
        super()._event(event)

    def _ended(self) -> None:
        try:
            rows = self.label_job.rows
            keep = self.scratch is None
            out = Path(self.label_job.config.output.dir) if keep else None
            videos = tuple(VideoResult.from_row(r, keep_outputs=keep) for r in rows)
            code = self._exit_code if self._exit_code is not None else 1
            self._summary = JobSummary(videos, code, out, self.results.dropped)
        finally:
            self.results.close()
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)

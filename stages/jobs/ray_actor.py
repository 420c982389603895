"""A warm worker of `vidpipe label --ray`: a long-lived Ray actor per worker slot that keeps
vidpipe's graph open (as `watch` does) and labels the videos the driver sends it as they come, so
the graph's start-up (about 2 s) is paid once per worker, not once per video or task.

    driver --ready()--------> LabelWorker (the actor): card lock, staging folder, WorkerJob
           <--decoders-----       run by run_job on a thread (JobRun), its sources open
           --label(video)--> the video on the graph's FileQueue; the call waits for its StreamDone,
           <--VideoResult---  moves its outputs from staging into OUT, answers (several calls wait
                              at once: Ray runs them on the actor's threads, max_concurrency)
           --stop()--------> the graph drained and joined, the card and staging folder released

A stage failure ends the actor's graph: the calls under way answer `unfinished` with the failure
(their videos run again, each alone in a graph: stages.jobs.ray_feed), and so does any later
call; the driver replaces the worker.
An actor killed (kill -9, its node lost) takes its graph's processes with it: they see their
parent gone and leave (pipeline.stage), and the next graph on that node reclaims their shared
memory (stages.jobs.graph.run_graph).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

from vidpipe.pipeline.errors import one_line
from vidpipe.stages.config import JobConfig, max_open_sources
from vidpipe.stages.jobs.graph import run_job
from vidpipe.stages.jobs.handles import JobRun
from vidpipe.stages.jobs.ray_worker import (
    VideoResult,
    WorkerJob,
    card_for_task,
    on_this_host,
    outcome,
    sized_for_the_task,
    staging_folder,
    unreadable,
    worker_host,
)
from vidpipe.stages.sources.files import VideoInfo

log = logging.getLogger(__name__)

ENDED_WAIT_S = 30.0  # for the graph's thread to end once it has closed the job (and say why)


class LabelWorker:
    """See the module docstring; the driver wraps it with ray.remote. `max_frame_bytes`: the
    largest frame of the job's videos (sizes the frame ring once)."""

    def __init__(self, config: JobConfig, max_frame_bytes: int) -> None:
        self.host = worker_host()
        self.out = Path(config.output.dir)
        self._card = contextlib.ExitStack()
        config = sized_for_the_task(config)  # settled by the driver (settle_config)
        backend = self._card.enter_context(card_for_task(config))
        self.staging = staging_folder(self.out)
        self.job = WorkerJob(on_this_host(config, backend, self.staging), max_frame_bytes)
        self._run = JobRun(self.job, run_job, logging.WARNING).start()

    def ready(self, timeout_s: float) -> tuple[int, str]:
        """Once its graph runs: the videos it decodes at once, and its host (with node and pid).
        Raises what kept the graph from starting."""
        if not self.job.attached.wait(timeout_s):
            self._run.join(0)  # raises what ended it, if anything did
            raise TimeoutError(f"the graph of the worker on {self.host} did not start within {timeout_s:.0f} s")
        return max_open_sources(self.job.config), self.host

    def label(self, video: VideoInfo) -> VideoResult:
        """Label `video` in the running graph; its outputs are in OUT when this returns."""
        if (bad := unreadable(video, self.host)) is not None:
            return bad
        self.job.label(video)
        result = outcome(self.job, video, self.staging, self.out, self.host)
        if result is None:
            return VideoResult(video.stream, self.host, error=self._ended_why(), unfinished=True)
        return result

    def _ended_why(self) -> str:
        """Why the graph ended under a video (its thread ends right after it closed the job)."""
        try:
            self._run.join(ENDED_WAIT_S)
        except Exception as exc:  # what ended it: a stage failed
            return f"the graph on {self.host} failed: {one_line(exc)}"
        return f"the graph on {self.host} ended before the video did"

    def stop(self, timeout_s: float) -> bool:
        """Drain and join the graph (every stage process gone), release the card, remove the
        staging folder; True once the graph has ended."""
        self.job.drain()
        try:
            ended = self._run.join(timeout_s)
        except Exception as exc:  # it failed: it has ended all the same
            log.warning("the graph on %s ended with: %s", self.host, one_line(exc))
            ended = True
        if ended:
            self._card.close()
            shutil.rmtree(self.staging, ignore_errors=True)
        return ended

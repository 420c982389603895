"""The Job protocol: what one kind of run (label, live, the bench's timed label, a Ray worker...)
tells the runner, which knows nothing else about it.

    job.prepare()          main process, before any stage: check inputs, make the output folder;
                           returns the GraphShape it needs (raises a VidpipeError when it cannot
                           run, NothingToDo when everything is done already)
    job.sources(...)       the source stage processes (tier 0 of the graph)
    job.outputs(plan)      the sink's OutputsFactory (picklable: it is made here, used there), once
                           the graph is sized (`plan`: its processes, after a /dev/shm fit)
    job.on_event(event)    every typed event from the stages (progress, problems, streams done)
    job.close()            always, after the graph: progress bars, unfinished outputs
    job.finish(...)        after a complete run (or nothing to do): the explicit step that writes
                           the job's summary and report
    job.exit_code(...)     a query: EXIT_OK / FAILED / INTERRUPTED
    job.release()          always, last: what prepare() claimed (the output folder's lock)

`stages.jobs.graph.run_job(job)` drives these around `run_graph`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vidpipe.hw.base import INPUT_SHAPE
from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.events import Event
from vidpipe.pipeline.recovery import RestartPolicy
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.stage import Stage
from vidpipe.pipeline.supervisor import ProcSpec, Supervisor
from vidpipe.stages.config import JobConfig
from vidpipe.stages.jobs.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from vidpipe.stages.sink import LaneParams, OutputsFactory, SinkStage
from vidpipe.stages.sources.files import VideoInfo

TENSOR_BYTES = int(INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2])

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "TENSOR_BYTES", "FilesJob", "GraphPlan",
           "GraphShape", "Job", "NothingToDo"]


class NothingToDo(Exception):
    """prepare(): every input is done already (e.g. --resume after a complete run): no graph runs,
    the job's finish() and exit_code() still report."""


@dataclass(frozen=True)
class GraphShape:
    """What a job asks of the graph besides its config."""

    max_frame_bytes: int  # the largest frame a source will write (sizes the frame ring)
    queue_size: int  # descriptors per queue; short for live (a waiting frame is latency)
    max_open_sources: int = 0  # source processes running at once; 0 = all
    stale_after_s: float = 0.0  # live: preprocess drops older frames; 0 = never
    restart: RestartPolicy | None = None  # live: crashed sources/preprocess/infer restart; None: a crash stops all
    open_sources: bool = False  # sources are added while it runs (Service.attach): runs until Ctrl-C
    sink: type[SinkStage] = SinkStage  # live: a sink that skips frames lost in a crash
    encoders: int = 0  # output processes after the sink, one lane each (label: the annotated videos)
    encoder: type[Stage[LaneParams]] | None = None  # what runs at the end of each lane


@dataclass(frozen=True)
class GraphPlan:
    """The sizes the graph runs with (stages.jobs.graph.plan, fitted to /dev/shm)."""

    frame_bytes: int
    frame_slots: int
    tensor_slots: int
    workers: int
    infer_procs: int

    @property
    def shm_bytes(self) -> int:
        """/dev/shm the two rings take."""
        return self.frame_slots * self.frame_bytes + self.tensor_slots * TENSOR_BYTES


class Job(Protocol):
    config: JobConfig

    def prepare(self) -> GraphShape: ...

    def sources(self, frames: SlotRing, outbox: Channel) -> list[ProcSpec]: ...

    def outputs(self, plan: GraphPlan) -> OutputsFactory: ...

    def on_event(self, event: Event) -> None: ...

    def close(self) -> None: ...

    def finish(self, interrupted: bool) -> None: ...

    def exit_code(self, interrupted: bool) -> int: ...

    def release(self) -> None: ...


@runtime_checkable
class FilesJob(Job, Protocol):
    """A job over files planned up front (label): a runner that places the files itself (the Ray
    driver) takes them from `infos` once prepare() returned, and tells the job about each through
    on_event, as its graph would have: Progress, SourceProblem, StreamDone (with the host)."""

    infos: list[VideoInfo]


@runtime_checkable
class Service(Protocol):
    """A job that changes its graph while it runs (live: streams added and removed over HTTP).
    `attach` is called in the main process before the supervisor starts; the job keeps it and
    uses its documented run-time calls (watch, add_process, running) from on_event or a watched
    connection's callback, i.e. on the supervisor's own thread."""

    def attach(self, supervisor: Supervisor) -> None: ...

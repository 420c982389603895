"""Builds the process graph of a job and runs it under the supervisor.

sources (tier 0) --pre_q--> preprocess x N (tier 1) --infer_q--> infer x cards (tier 2)
                                                              --sink_q--> sink (tier 3)
                                       --lane i--> encoder i (tiers 4.., GraphShape.encoders)

The graph is the same for every job: the Job (stages.jobs.base) brings its sources, its outputs
and its GraphShape; nothing here asks which kind of job it runs.
"""

from __future__ import annotations

import logging
import multiprocessing
from dataclasses import dataclass, replace
from typing import Any

import cv2

from vidpipe.hw.registry import backend_device_count
from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.errors import ConfigError
from vidpipe.pipeline.flags import SharedFlag
from vidpipe.pipeline.recovery import LeasedSlotRing
from vidpipe.pipeline.shm import SlotRing, reclaim_orphaned_segments, reclaim_orphaned_semaphores, shm_free_bytes
from vidpipe.pipeline.supervisor import ProcSpec, Supervisor, Tier
from vidpipe.stages.config import JobConfig, preprocess_workers
from vidpipe.stages.infer import InferParams, InferStage
from vidpipe.stages.jobs.base import TENSOR_BYTES, GraphPlan, GraphShape, Job, NothingToDo, Service
from vidpipe.stages.preprocess import PreprocessParams, PreprocessStage
from vidpipe.stages.sink import LaneParams, SinkParams

log = logging.getLogger(__name__)

FRAME_RING_BUDGET = 768 * 1024 * 1024  # bytes of /dev/shm for frames unless frame_slots is set
SHM_SHARE = 0.9  # of the free /dev/shm the rings may take; the rest is left to the machine


@dataclass(frozen=True)
class GraphRun:
    plan: GraphPlan
    interrupted: bool  # Ctrl-C / SIGTERM drained the graph
    config: JobConfig  # the job's config as the graph ran it (fit_to_shm may lower the batch and workers)


def plan(config: JobConfig, max_frame_bytes: int, shm_budget: int | None = None) -> GraphPlan:
    """Ring sizes for `config`; the frame ring shrinks (not below its floor) to fit `shm_budget`."""
    workers = preprocess_workers(config)
    cards = backend_device_count(config.backend)
    batch = config.backend.batch
    tensors = batch * (config.backend.buffer_sets + 1) * cards + 2 * workers + 4
    # Enough frames in flight to keep every buffer set of every card busy plus the workers; the
    # ring bounds memory, the queues only bound descriptors.
    wanted = 2 * batch * config.backend.buffer_sets * cards + 2 * workers + 8
    floor = batch * cards + workers + 4
    budget = FRAME_RING_BUDGET if shm_budget is None else min(FRAME_RING_BUDGET, shm_budget - tensors * TENSOR_BYTES)
    slots = config.runtime.frame_slots or max(floor, min(wanted, budget // max_frame_bytes))
    return GraphPlan(max_frame_bytes, slots, tensors, workers, cards)


def fit_to_shm(config: JobConfig, max_frame_bytes: int, free: int | None) -> tuple[JobConfig, GraphPlan]:
    """The plan, and `config` with backend.max_batch halved, then preprocess.workers halved,
    until the rings fit in `free` bytes of /dev/shm: a container's default /dev/shm (64 MiB)
    then runs a smaller graph instead of dying of SIGBUS when a page of an oversized ring is
    first touched. ConfigError if batch 1 and one worker do not fit either."""
    if free is None:
        return config, plan(config, max_frame_bytes)
    usable = int(free * SHM_SHARE)
    graph = plan(config, max_frame_bytes, usable)
    if graph.shm_bytes <= usable:
        return config, graph
    fitted = config
    while graph.shm_bytes > usable and (fitted.backend.batch > 1 or graph.workers > 1):
        if fitted.backend.batch > 1:
            fitted = replace(fitted, backend=replace(fitted.backend, max_batch=fitted.backend.batch // 2))
        else:  # the ring's floor holds a frame per worker: many cores, little /dev/shm
            fitted = replace(fitted, preprocess=replace(fitted.preprocess, workers=graph.workers // 2))
        graph = plan(fitted, max_frame_bytes, usable)
    mib = 2**20
    if graph.shm_bytes > usable:
        raise ConfigError(
            f"/dev/shm: {free // mib} MiB free, but even at batch 1 with 1 worker the frame rings need "
            f"{graph.shm_bytes / SHM_SHARE / mib:.0f} MiB: free some, or enlarge it (docker run --shm-size=1g)",
            key="runtime.frame_slots")
    log.warning("/dev/shm: %d MiB free: backend.max_batch %d -> %d, preprocess workers %d -> %d so that the "
                "frame rings fit (enlarge it for full speed: docker run --shm-size=1g)",
                free // mib, config.backend.batch, fitted.backend.batch,
                preprocess_workers(config), graph.workers)
    return fitted, graph


def run_job(job: Job, log_queue: Any, log_level: int) -> int:
    """prepare -> run the graph -> close (always) -> finish -> exit code; release (always, last).
    Raises StageFailed if a stage failed (everything is cleaned up by then) and VidpipeError when
    there is nothing to run."""
    try:
        try:
            shape = job.prepare()
        except NothingToDo as done:
            log.info("%s", done)
            job.close()
            job.finish(False)
            return job.exit_code(False)
        try:
            run = run_graph(job, shape, log_queue, log_level)
        finally:
            job.close()
        job.finish(run.interrupted)
        return job.exit_code(run.interrupted)
    finally:
        job.release()


def run_graph(job: Job, shape: GraphShape, log_queue: Any, log_level: int) -> GraphRun:
    """Run `job`'s graph to completion under the supervisor."""
    if reclaimed := reclaim_orphaned_segments():  # first: what they held is free space again
        log.info("reclaimed %d shared-memory segments left by vidpipe jobs that no longer run", len(reclaimed))
    if semaphores := reclaim_orphaned_semaphores():
        log.info("reclaimed %d semaphores (/dev/shm/sem.mp-*) that no running process uses", len(semaphores))
    config, graph = fit_to_shm(job.config, shape.max_frame_bytes, shm_free_bytes())
    ctx = multiprocessing.get_context(config.runtime.start_method)
    cv2.setNumThreads(1)  # forked stages inherit it (see PreprocessStage); the main process only probes files
    abort = SharedFlag(ctx)
    ring = LeasedSlotRing if shape.restart else SlotRing  # restarts reclaim the slots a dead stage held
    rings: list[SlotRing] = []
    try:  # until the supervisor owns the rings, an exception (a Ctrl-C at start-up) must unlink them
        rings.append(ring(ctx, graph.frame_slots, graph.frame_bytes, "frames"))
        rings.append(ring(ctx, graph.tensor_slots, TENSOR_BYTES, "tensors"))
        backend = config.backend
        channels = [
            Channel(ctx, "preprocess-in", shape.queue_size, abort),
            Channel(ctx, "infer-in", shape.queue_size, abort),
            Channel(ctx, "sink-in", max(shape.queue_size, 2 * backend.batch * backend.buffer_sets), abort),
            *(Channel(ctx, f"encode-in-{i}", shape.queue_size, abort) for i in range(_encoders(shape))),
        ]
        tiers = _tiers(job, config, shape, graph, rings[0], rings[1], channels, ctx)
        sup = Supervisor(
            ctx,
            tiers,
            rings,
            channels,
            job.on_event,
            log_queue,
            log_level,
            config.runtime.drain_timeout_s,
            abort=abort,
            stall_timeout_s=config.runtime.stall_timeout_s,
        )
    except BaseException:
        for r in rings:
            r.close()
            r.unlink()
        raise
    if isinstance(job, Service):
        job.attach(sup)
    log.debug("graph: %s", graph)
    sup.run()
    return GraphRun(graph, sup.interrupted, config)


def _tiers(job: Job, config: JobConfig, shape: GraphShape, graph: GraphPlan, frames: SlotRing, tensors: SlotRing,
           channels: list[Channel], ctx: Any) -> list[Tier]:
    backend = config.backend
    pre_q, infer_q, sink_q, *lanes = channels
    preprocess = PreprocessParams(frames, tensors, config.preprocess.resize, shape.stale_after_s)
    sink = SinkParams(frames, job.outputs(graph), (pre_q, infer_q, sink_q), tuple(lanes))
    # the lanes wake each other when a chunk of a split video is done (stages.outputs.chunks)
    lane_params = LaneParams(frames, ctx.Condition() if len(lanes) > 1 else None)
    return [
        Tier("sources", tuple(job.sources(frames, pre_q)), max_running=shape.max_open_sources,
             restart=shape.restart, open=shape.open_sources),
        Tier(
            "preprocess",
            tuple(
                ProcSpec(f"preprocess-{i}", PreprocessStage(preprocess, pre_q, infer_q)) for i in range(graph.workers)
            ),
            inbox=pre_q,
            restart=shape.restart,
        ),
        Tier(
            "infer",
            tuple(
                ProcSpec(f"infer-{i}", InferStage(InferParams(backend, i, tensors, shape.stale_after_s), infer_q,
                                                  sink_q))
                for i in range(graph.infer_procs)
            ),
            inbox=infer_q,
            restart=shape.restart,  # a new infer process opens the accelerator again
        ),
        # a sink that can go on after a crash (the live one, renewed by its job) restarts as the rest
        Tier("sink", (ProcSpec("sink", shape.sink(sink, sink_q)),), inbox=sink_q,
             restart=shape.restart if shape.sink.restartable else None),
        # One tier per lane: each encoder has its own inbox, so each stream's order is its lane's.
        *(Tier(f"encode-{i}", (ProcSpec(f"encode-{i}", shape.encoder(lane_params, lane)),), inbox=lane)
          for i, lane in enumerate(lanes) if shape.encoder is not None),
    ]


def _encoders(shape: GraphShape) -> int:
    return shape.encoders if shape.encoder is not None else 0

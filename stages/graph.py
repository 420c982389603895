"""Builds the process graph of a job and runs it under the supervisor.

sources (tier 0) --pre_q--> preprocess x N (tier 1) --infer_q--> infer x cards (tier 2)
                                                              --sink_q--> sink (tier 3)
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2

from hw.base import INPUT_SHAPE
from hw.registry import backend_device_count
from pipeline.channels import Channel
from pipeline.shm import SlotRing
from pipeline.supervisor import ProcSpec, Supervisor, Tier
from stages.config import JobConfig, preprocess_workers
from stages.infer import run_infer
from stages.preprocess import run_preprocess
from stages.sink import OutputsFactory, run_sink

log = logging.getLogger(__name__)

FRAME_RING_BUDGET = 768 * 1024 * 1024  # bytes of /dev/shm for frames unless frame_slots is set

SourceFactory = Callable[[SlotRing, Channel], list[ProcSpec]]


@dataclass(frozen=True)
class GraphPlan:
    frame_bytes: int
    frame_slots: int
    tensor_slots: int
    workers: int
    infer_procs: int


def plan(job: JobConfig, max_frame_bytes: int) -> GraphPlan:
    workers = preprocess_workers(job)
    cards = backend_device_count(job.backend)
    batch = job.backend.max_batch
    # Enough frames in flight to keep every buffer set of every card busy plus the workers; the
    # ring bounds memory, the queues only bound descriptors.
    wanted = 2 * batch * job.backend.buffer_sets * cards + 2 * workers + 8
    floor = batch * cards + workers + 4
    slots = job.runtime.frame_slots or max(floor, min(wanted, FRAME_RING_BUDGET // max_frame_bytes))
    tensors = batch * (job.backend.buffer_sets + 1) * cards + 2 * workers + 4
    return GraphPlan(max_frame_bytes, slots, tensors, workers, cards)


def run_graph(
    job: JobConfig,
    graph: GraphPlan,
    make_sources: SourceFactory,
    make_outputs: OutputsFactory,
    on_event: Callable[[str, str, dict[str, Any]], None],
    log_queue: Any,
    log_level: int,
    stale_after_s: float = 0.0,
) -> Supervisor:
    """Run to completion; returns the supervisor (to ask whether it was interrupted).
    Raises StageFailed if a stage failed (everything is already cleaned up then)."""
    ctx = multiprocessing.get_context(job.runtime.start_method)
    cv2.setNumThreads(1)  # forked stages inherit it (see run_preprocess); the main process only probes files
    abort = ctx.Event()
    frames = SlotRing(ctx, graph.frame_slots, graph.frame_bytes, "frames")
    tensors = SlotRing(ctx, graph.tensor_slots, int(INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2]), "tensors")
    qsize = job.runtime.queue_size
    if job.job == "live":  # a frame waiting in a queue is latency: keep live queues short
        qsize = min(qsize, max(2, job.backend.max_batch))
    pre_q = Channel(ctx, "preprocess-in", qsize, abort)
    infer_q = Channel(ctx, "infer-in", qsize, abort)
    sink_q = Channel(ctx, "sink-in", max(qsize, 2 * job.backend.max_batch * job.backend.buffer_sets), abort)
    tiers = [
        Tier("sources", tuple(make_sources(frames, pre_q)), max_running=_max_sources(job)),
        Tier(
            "preprocess",
            tuple(
                ProcSpec(
                    f"preprocess-{i}",
                    run_preprocess,
                    (frames, tensors, pre_q, infer_q, job.preprocess.resize, stale_after_s),
                )
                for i in range(graph.workers)
            ),
            inbox=pre_q,
        ),
        Tier(
            "infer",
            tuple(
                ProcSpec(f"infer-{i}", run_infer, (job.backend, i, tensors, infer_q, sink_q))
                for i in range(graph.infer_procs)
            ),
            inbox=infer_q,
        ),
        Tier(
            "sink",
            (ProcSpec("sink", run_sink, (frames, sink_q, make_outputs, (pre_q, infer_q, sink_q))),),
            inbox=sink_q,
        ),
    ]
    sup = Supervisor(
        ctx,
        tiers,
        [frames, tensors],
        [pre_q, infer_q, sink_q],
        on_event,
        log_queue,
        log_level,
        job.runtime.drain_timeout_s,
        abort=abort,
    )
    log.debug("graph: %s", graph)
    sup.run()
    return sup


def _max_sources(job: JobConfig) -> int:
    return 0 if job.job == "live" else job.runtime.max_open_sources

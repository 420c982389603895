"""Infer: the process that owns one accelerator. Batches across streams and double-buffers.

    inbox --TensorRef--> batcher (max_batch, batch_timeout) --> fill buffer set k (one copy per
    tensor, straight from the tensor slot into the device's host buffer) --> start(k)
    while k runs: collect and fill k+1 --> wait(k) --> Results --> out

Every buffer set is either free or in flight; a set is refilled only after its wait().
May block: on the inbox (bounded by batch_timeout once a batch has begun), on wait() for the
oldest batch when no set is free, and on a full output queue. The results of a batch go to
the sink as one queue item (Channel.put_many).
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from hw.base import INPUT_DTYPE, INPUT_SHAPE, Accelerator
from hw.registry import create_backend
from hw.settings import BackendSettings
from pipeline.channels import Channel, Stop
from pipeline.shm import SlotRing
from pipeline.stage import StageContext
from stages.descriptors import Result, TensorRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelInfo:
    """Sent once by each infer process before its first result: how to name class ids."""

    backend: str
    names: tuple[str, ...]
    meaningful: bool


@dataclass
class _InFlight:
    buffer_set: int
    refs: list[TensorRef]
    t_start: float


def run_infer(
    ctx: StageContext, settings: BackendSettings, device_index: int, tensors: SlotRing, inbox: Channel, out: Channel
) -> None:
    backend = create_backend(settings, device_index)
    try:
        backend.open()
        out.put(LabelInfo(backend.name, tuple(backend.class_names()), backend.labels_meaningful))
        _Batcher(backend, settings, tensors, inbox, out).run()
    finally:
        backend.close()


class _Batcher:
    def __init__(
        self, backend: Accelerator, settings: BackendSettings, tensors: SlotRing, inbox: Channel, out: Channel
    ) -> None:
        self.backend = backend
        self.max_batch = min(settings.max_batch, backend.max_batch)
        self.timeout_s = settings.batch_timeout_ms / 1000.0
        self.tensors = tensors
        self.inbox = inbox
        self.out = out
        self.free_sets = deque(range(backend.buffer_sets))
        self.in_flight: deque[_InFlight] = deque()

    def run(self) -> None:
        while True:
            batch, stop = self._collect()
            if batch:
                if not self.free_sets:
                    self._finish_oldest()
                    if not stop:  # what arrived during the wait rides along: fuller batches
                        stop = self._collect(batch, wait=False)[1]
                self._launch(batch)
            elif self.in_flight:
                self._finish_oldest()  # nothing new to overlap with: read back the oldest
            if stop:
                while self.in_flight:
                    self._finish_oldest()
                return

    def _collect(self, batch: list[TensorRef] | None = None, wait: bool = True) -> tuple[list[TensorRef], bool]:
        """Up to max_batch tensors (added to `batch`); waits at most batch_timeout once the first
        has arrived (or, with batches in flight, only that long for the first one).
        wait=False: only what is already queued."""
        batch = [] if batch is None else batch
        deadline = None if wait and not self.in_flight else time.monotonic() + (self.timeout_s if wait else 0.0)
        while len(batch) < self.max_batch:
            remaining = None if deadline is None else deadline - time.monotonic()
            if wait and remaining is not None and remaining <= 0:
                break  # (wait=False: non-blocking gets until the queue is empty)
            try:
                item: Any = self.inbox.get(timeout=None if remaining is None else max(remaining, 0.0))
            except queue.Empty:
                break
            if isinstance(item, Stop):
                return batch, True
            if not isinstance(item, TensorRef):
                self.out.put(item)  # stream markers go on to the sink
            elif item.frame.dropped:
                self.out.put(Result(item.frame, (), None, item.t_preprocessed, 0.0, 0.0))
            else:
                batch.append(item)
                if deadline is None:
                    deadline = time.monotonic() + self.timeout_s
        return batch, False

    def _launch(self, batch: list[TensorRef]) -> None:
        k = self.free_sets.popleft()
        buf = self.backend.input_buffer(k)
        for i, ref in enumerate(batch):
            buf[i] = self.tensors.view(ref.tensor_slot, INPUT_SHAPE, INPUT_DTYPE)
            self.tensors.release(ref.tensor_slot)
        t_start = time.time()
        self.backend.start(k, len(batch))
        self.in_flight.append(_InFlight(k, batch, t_start))

    def _finish_oldest(self) -> None:
        job = self.in_flight.popleft()
        output = self.backend.wait(job.buffer_set)
        t_done = time.time()
        self.free_sets.append(job.buffer_set)
        n = len(job.refs)
        timings = {"upload": output.upload_s / n, "compute": output.compute_s / n, "download": output.download_s / n}
        top5 = output.top5.tolist()  # python ints/floats, converted once per batch
        scores = None if output.scores is None else output.scores.tolist()
        results = [
            Result(
                ref.frame,
                tuple(top5[i]),
                None if scores is None else tuple(scores[i]),
                ref.t_preprocessed,
                job.t_start,
                t_done,
                timings,
            )
            for i, ref in enumerate(job.refs)
        ]
        self.out.put_many(results)  # the whole batch as one queue item: one hop, not n

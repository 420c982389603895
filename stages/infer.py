"""Infer: the process that owns one accelerator. Batches across streams and double-buffers.

    inbox --TensorRef--> batch (max_batch, batch_timeout) --> fill buffer set k (one copy per
    tensor, straight from the tensor slot into the device's host buffer) --> start(k)
    while k runs: collect and fill k+1 --> wait(k) --> Results --> outbox

Every buffer set is either free or in flight; a set is refilled only after its wait().
May block: on the inbox (bounded by batch_timeout once a batch has begun), on wait() for the
oldest batch when no set is free, and on a full outbox. The results of a batch go to the sink as
one queue item. On abort the in-flight batches are abandoned and the backend closed.

About once a second while it works (and once more when it goes idle) it also sends an InferStats:
batch sizes and busy time (a batch in flight), for the live metrics; a few additions per batch.

Live (`stale_after_s` > 0, the latency budget) batches differently, for latency:
* one batch in flight (a second one queued behind it on the card would only wait);
* an idle card gets what is there at once (no batch timeout); while it is busy, frames collect
  for the next batch, and when more than fit arrive, the oldest is dropped (`superseded`): the
  card always labels the newest frames;
* the batch size is capped so that the card's measured time for it fits half the budget;
* at launch, a frame that could not be labeled within the budget any more (its age + the card's
  expected time) is dropped (`late`), where before it only waited. Drops reach the sink as dropped
  Results with their reason (counted per stream, stages.outputs.live).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, replace

from vidpipe.hw.base import INPUT_DTYPE, INPUT_SHAPE, Accelerator
from vidpipe.hw.registry import create_backend
from vidpipe.hw.settings import BackendSettings
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.stage import Stage
from vidpipe.stages.descriptors import InferStats, LabelInfo, Result, TensorRef

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 1.0


@dataclass(frozen=True)
class InferParams:
    backend: BackendSettings
    device_index: int  # which of the backend's cards (0 .. backend_device_count - 1)
    tensors: SlotRing
    stale_after_s: float = 0.0  # live: the latency budget (see the module docstring); 0 = files


@dataclass
class _InFlight:
    buffer_set: int
    refs: list[TensorRef]
    t_start: float


class InferStage(Stage[InferParams]):
    """TensorRef in, Result out; a LabelInfo first. See the module docstring."""

    accepts = (TensorRef,)

    def open(self) -> None:
        self.backend = self.make_backend()
        self.backend.open()
        self.send(LabelInfo(self.backend.name, tuple(self.backend.class_names()), self.backend.labels_meaningful))
        settings = self.params.backend
        self.max_batch = self.batch_cap = min(settings.batch, self.backend.max_batch)
        self.timeout_s = settings.batch_timeout_ms / 1000.0
        self.free_sets = deque(range(self.backend.buffer_sets))
        self.budget_s = self.params.stale_after_s
        self.max_in_flight = 1 if self.budget_s > 0 else self.backend.buffer_sets
        self.per_image_s = 0.0  # live: the card's measured time per image (recent batches)
        self.in_flight: deque[_InFlight] = deque()
        self.batch: list[TensorRef] = []
        self.deadline = 0.0
        self.t_stats = time.time()  # InferStats: since when, batch size -> count, busy seconds
        self.batch_sizes: dict[int, int] = {}
        self.busy_s = self.busy_since = 0.0

    def make_backend(self) -> Accelerator:
        return create_backend(self.params.backend, self.params.device_index)

    def handle(self, item: TensorRef) -> None:
        if item.frame.dropped:
            self.emit(Result(item.frame, (), None, item.t_preprocessed, 0.0, 0.0))
            return
        if not self.batch:
            self.deadline = time.monotonic() + self.timeout_s
        self.batch.append(item)
        if self.budget_s > 0:
            self._live_arrival()
        elif len(self.batch) >= self.max_batch:
            if not self._can_launch():
                self._finish_oldest()
            self._launch()

    def _live_arrival(self) -> None:
        """Live: an idle card takes the frames at once; a busy one gets the newest that fit next."""
        while len(self.batch) > self.max_batch:
            self._drop(self.batch.pop(0), "superseded")
        if not self.in_flight:
            self._launch()

    def _can_launch(self) -> bool:
        return bool(self.free_sets) and len(self.in_flight) < self.max_in_flight

    def poll_s(self) -> float | None:
        if self.budget_s > 0 and self.in_flight:  # live: wake when the batch should be done
            job = self.in_flight[0]
            return max(0.0, job.t_start + self.per_image_s * len(job.refs) - time.time())
        if self.batch:
            return max(0.0, self.deadline - time.monotonic())
        # with batches in flight, wait only that long for new work before reading one back
        if self.in_flight:
            return self.timeout_s
        # idle with unreported work: wake once more to report it (the busy ratio falls to 0)
        return max(0.0, self.t_stats + STATS_INTERVAL_S - time.time()) if self.batch_sizes else None

    def on_idle(self) -> None:
        if self.budget_s > 0 and self.in_flight:
            self._finish_oldest()
            if self.batch:
                self._launch()
        elif self.batch and self._can_launch():
            self._launch()
        elif self.in_flight:
            # Nothing new to overlap with: read back the oldest. A partial batch stays open (its
            # deadline has passed, so the next inbox poll does not wait): what arrived during
            # the wait rides along, and full batches keep the card's per-batch cost amortized.
            self._finish_oldest()
        elif self.batch_sizes and time.time() - self.t_stats >= STATS_INTERVAL_S:
            self._report_stats(time.time())
            self.flush()

    def finish(self) -> None:
        if self.batch:
            if not self._can_launch():
                self._finish_oldest()
            self._launch()
        while self.in_flight:
            self._finish_oldest()

    def close(self) -> None:
        backend = getattr(self, "backend", None)
        if backend is not None:
            backend.close()

    def _launch(self) -> None:
        batch, self.batch = self.batch, []
        if self.budget_s > 0:
            batch = self._in_time(batch)
            if not batch:
                return
        k = self.free_sets.popleft()
        buf = self.backend.input_buffer(k)
        tensors = self.params.tensors
        for i, ref in enumerate(batch):
            buf[i] = tensors.view(ref.tensor_slot, INPUT_SHAPE, INPUT_DTYPE)
            tensors.release(ref.tensor_slot)
        t_start = time.time()
        self.backend.start(k, len(batch))
        if not self.in_flight:
            self.busy_since = t_start
        self.in_flight.append(_InFlight(k, batch, t_start))
        self.batch_sizes[len(batch)] = self.batch_sizes.get(len(batch), 0) + 1

    def _finish_oldest(self) -> None:
        job = self.in_flight.popleft()
        output = self.backend.wait(job.buffer_set)
        t_done = time.time()
        self.free_sets.append(job.buffer_set)
        if not self.in_flight:
            self.busy_s += t_done - self.busy_since
        n = len(job.refs)
        if self.budget_s > 0:  # the card's own time: how late this process looked must not feed back
            self._learn(output.upload_s + output.compute_s + output.download_s, n)
        timings = {"upload": output.upload_s / n, "compute": output.compute_s / n, "download": output.download_s / n}
        top5 = output.top5.tolist()  # python ints/floats, converted once per batch
        scores = None if output.scores is None else output.scores.tolist()
        for i, ref in enumerate(job.refs):
            score = None if scores is None else tuple(scores[i])
            self.emit(Result(ref.frame, tuple(top5[i]), score, ref.t_preprocessed, job.t_start, t_done, timings))
        if t_done - self.t_stats >= STATS_INTERVAL_S:
            self._report_stats(t_done)
        self.flush()  # the whole batch as one queue item: one hop, not n

    def _in_time(self, batch: list[TensorRef]) -> list[TensorRef]:
        """Live: the newest frames of `batch` that fit the batch size the budget allows and that the
        card can still label within the budget; the rest dropped."""
        newest = batch[-self.max_batch:]
        for ref in batch[:-self.max_batch]:
            self._drop(ref, "superseded")
        now = time.time()
        expected = min(self.per_image_s * len(newest), self.budget_s / 2)
        keep = []
        for ref in newest:
            if now - ref.frame.t_capture + expected <= self.budget_s:
                keep.append(ref)
            else:
                self._drop(ref, "late")
        if len(keep) < len(batch):
            self.flush()  # (from on_idle, nothing else flushes)
        return keep

    def _drop(self, ref: TensorRef, reason: str) -> None:
        self.params.tensors.release(ref.tensor_slot)
        frame = replace(ref.frame, dropped=True, drop_reason=reason)
        self.emit(Result(frame, (), None, ref.t_preprocessed, 0.0, 0.0))

    def _learn(self, seconds: float, n: int) -> None:
        """Live: the card's time per image (moving average), and the batch that fits half the budget."""
        sample = seconds / n
        self.per_image_s = sample if self.per_image_s == 0 else 0.7 * self.per_image_s + 0.3 * sample
        fits = int(self.budget_s / 2 / self.per_image_s) if self.per_image_s > 0 else self.batch_cap
        self.max_batch = max(1, min(self.batch_cap, fits))

    def _report_stats(self, now: float) -> None:
        if self.in_flight:  # the batches still running count up to now
            self.busy_s += now - self.busy_since
            self.busy_since = now
        self.emit(InferStats(f"infer-{self.params.device_index}", self.batch_sizes, self.busy_s, now - self.t_stats))
        self.t_stats, self.batch_sizes, self.busy_s = now, {}, 0.0

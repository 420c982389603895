"""`sim`: a timing model of the ResNet50 accelerator on an Alveo U250, no labels of value.

latency(n) = base_ms + per_image_ms * n for a batch of n images, on ONE compute unit: a batch
started while another runs begins when the previous one ends (XRT queues the start). The
published host numbers (Xilinx/ResNet50-PYNQ host/README.md, synth_bench_power.py) are
batch 1: 2.02 ms (495 FPS), batch 100: 51.06 ms (1958 FPS), batch 1000: 496.14 ms (2015 FPS);
a straight line through them gives base 1.525 ms, 0.4954 ms per image. SimSettings defaults
(1.5, 0.5) are within 1.1% of all three.

Only the card is modeled: the host copies into input_buffer() are real, upload and download
are free (their real cost is what the alveo backend measures). wait() sleeps until the modeled
completion time: that sleep *is* the modeled hardware time, not a synchronisation.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from vidpipe.hw.base import INPUT_DTYPE, INPUT_SHAPE, TOP_K, BackendSpec, BatchOutput, DeviceInfo, check_start
from vidpipe.hw.settings import BackendSettings
from vidpipe.pipeline.errors import BackendError

PUBLISHED_MS = {1: 2.02, 100: 51.06, 1000: 496.14}  # batch size -> latency on the U250


@dataclass(frozen=True)
class _Batch:
    n: int
    begin: float  # perf_counter() when the modeled CU starts this batch
    end: float  # ... and when it finishes


class SimBackend:
    """Accelerator with the U250's timing and a fixed top-5 pattern (labels_meaningful=False)."""

    labels_meaningful = False

    def __init__(self, settings: BackendSettings) -> None:
        if settings.buffer_sets < 1 or settings.batch < 1:
            sizes = f"max_batch {settings.batch}, buffer_sets {settings.buffer_sets}"
            raise BackendError(f"sim: {sizes}: both must be >= 1")
        self.name = "sim"
        self.max_batch = settings.batch
        self.buffer_sets = settings.buffer_sets
        self.base_s = settings.sim.base_ms / 1000.0
        self.per_image_s = settings.sim.per_image_ms / 1000.0
        self._inputs: np.ndarray | None = None
        self._running: dict[int, _Batch] = {}
        self._cu_free_at = 0.0
        self._pattern = np.tile(np.arange(TOP_K, dtype=np.uint32), (self.max_batch, 1))

    def latency_s(self, n: int) -> float:
        """Modeled kernel time for a batch of n images."""
        return self.base_s + self.per_image_s * n

    def open(self) -> None:
        if self._inputs is None:
            self._inputs = np.zeros((self.buffer_sets, self.max_batch, *INPUT_SHAPE), INPUT_DTYPE)

    def input_buffer(self, buffer_set: int) -> np.ndarray:
        return self._opened()[buffer_set]

    def start(self, buffer_set: int, n: int) -> None:
        self._opened()
        check_start("sim", buffer_set, n, self.buffer_sets, self.max_batch, self._running)
        begin = max(time.perf_counter(), self._cu_free_at)  # one CU: queue behind the running batch
        end = begin + self.latency_s(n)
        self._cu_free_at = end
        self._running[buffer_set] = _Batch(n, begin, end)

    def wait(self, buffer_set: int) -> BatchOutput:
        batch = self._running.pop(buffer_set, None)
        if batch is None:
            raise BackendError(f"sim: wait() on buffer set {buffer_set}, which was not started")
        remaining = batch.end - time.perf_counter()
        if remaining > 0:
            time.sleep(remaining)  # the modeled hardware time
        return BatchOutput(self._pattern[: batch.n].copy(), None, 0.0, batch.end - batch.begin, 0.0)

    def close(self) -> None:
        self._running.clear()
        self._inputs = None

    def class_names(self) -> list[str]:
        from vidpipe.hw.imagenet import class_names

        return class_names()

    def _opened(self) -> np.ndarray:
        if self._inputs is None:
            raise BackendError("sim: backend used before open()")
        return self._inputs


def _sim_devices(settings: BackendSettings) -> list[DeviceInfo]:
    s = settings.sim
    ms = [s.base_ms + s.per_image_ms * n for n in (1, 100)]
    model = f"{s.base_ms} ms + {s.per_image_ms} ms/image: batch 1 {ms[0]:.1f} ms, batch 100 {ms[1]:.1f} ms"
    return [DeviceInfo("sim", "U250 timing model", model)]


BACKEND = BackendSpec(
    name="sim",
    summary="the U250's timing without labels of value: can the host feed the card?",
    create=lambda settings, index: SimBackend(settings),
    fingerprint=lambda settings: {"sim": asdict(settings.sim)},
    devices=_sim_devices,
)

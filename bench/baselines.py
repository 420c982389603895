"""The baselines vidpipe is measured against, run in this process on the same clips.

* decode ceiling: the bare `cv2.VideoCapture(path).read()` loop, nothing else;
* naive loop: what a user writes from the ResNet50-PYNQ host snippet, one frame at a time:
  read -> cv2.resize -> copy into the input buffer -> blocking call (batch 1) -> overlay;
  on the sim card that is start() + wait() per frame;
* bare onnxruntime: hw.cpu.CpuModel.classify over already-decoded tensors, in batches.

Each returns a Baseline (frames, seconds, fps, and the CPU seconds of this process meanwhile,
every thread: what the cpu backend's CPU bound is computed from); timing covers opening the clip
as well. `preprocess_cpu_ms`: the resize alone, per frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidpipe.hw.base import INPUT_DTYPE, INPUT_SHAPE
from vidpipe.hw.settings import BackendSettings
from vidpipe.hw.sim import SimBackend
from vidpipe.stages.outputs.overlay import draw_labels
from vidpipe.stages.preprocess import SIZE, preprocess_frame


@dataclass(frozen=True)
class Baseline:
    name: str
    frames: int
    seconds: float
    cpu_s: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms(self) -> float:
        """CPU per frame (ms)."""
        return 1e3 * self.cpu_s / self.frames if self.frames else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "fps": self.fps}


def best_of(runs: list[Baseline]) -> Baseline:
    """The fastest of repeated runs: noise from other work on the machine only slows a run down."""
    return max(runs, key=lambda b: b.fps)


def decode_ceiling(path: Path) -> Baseline:
    c0, t0 = time.process_time(), time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return Baseline("decode ceiling", n, time.perf_counter() - t0, time.process_time() - c0)


def naive_sim_loop(path: Path) -> Baseline:
    """One frame at a time on the sim card (the U250's batch-1 latency: 2 ms)."""
    card = SimBackend(BackendSettings(name="sim", max_batch=1, buffer_sets=2))
    card.open()
    names = [f"sim: class {i}" for i in range(5)]
    t0 = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    inbuf = card.input_buffer(0)
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        small = cv2.resize(frame, SIZE, interpolation=cv2.INTER_LINEAR)
        inbuf[0] = small.view(INPUT_DTYPE)
        card.start(0, 1)
        out = card.wait(0)
        draw_labels(frame, [names[int(c)] for c in out.top5[0]], None)
        n += 1
    cap.release()
    card.close()
    return Baseline("naive loop (sim, batch 1)", n, time.perf_counter() - t0)


def frames(path: Path, limit: int) -> Iterator[np.ndarray]:
    """The first `limit` decoded BGR frames of the clip, one at a time."""
    cap = cv2.VideoCapture(str(path))
    try:
        for _ in range(limit):
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def decoded_tensors(path: Path, limit: int) -> np.ndarray:
    """The first `limit` frames of the clip as the accelerator's int8 tensors (preprocessed)."""
    out = [preprocess_frame(frame).view(INPUT_DTYPE) for frame in frames(path, limit)]
    return np.stack(out) if out else np.empty((0, *INPUT_SHAPE), INPUT_DTYPE)


def preprocess_cpu_ms(path: Path, limit: int) -> float:
    """The resize of preprocess alone: CPU ms per frame over the first `limit` frames."""
    cap = cv2.VideoCapture(str(path))
    out = np.empty((*SIZE[::-1], 3), np.uint8)
    cpu, n = 0.0, 0
    while n < limit:
        ok, frame = cap.read()
        if not ok:
            break
        c0 = time.process_time()
        preprocess_frame(frame, out)
        cpu += time.process_time() - c0
        n += 1
    cap.release()
    return 1e3 * cpu / max(n, 1)


def bare_onnx_loop(tensors: np.ndarray, batch: int) -> Baseline:
    """CpuModel.classify over `tensors` in batches of `batch`, after one warm-up batch (the
    session options of the cpu backend: a thread per core, no spinning)."""
    from vidpipe.hw.cpu import CpuModel

    model = CpuModel()
    model.classify(tensors[:batch])  # warm-up: onnxruntime allocates on the first run
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(0, len(tensors), batch):
        model.classify(tensors[i : i + batch])
    return Baseline(f"bare onnxruntime (batch {batch})", len(tensors), time.perf_counter() - t0,
                    time.process_time() - c0)

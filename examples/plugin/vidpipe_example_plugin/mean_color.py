"""Backend `mean-color`: names each frame by the reference colour nearest its mean colour.

A toy, but a complete vidpipe backend: the accelerator protocol (vidpipe.hw.base.Accelerator:
buffer sets filled by the infer stage, start/wait), typed options (`backend.options`) and a
BackendSpec, registered by an entry point. `backend: {name: mean-color, options: {sharpness: 4}}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidpipe.hw.base import INPUT_DTYPE, INPUT_SHAPE, TOP_K, BackendSpec, BatchOutput, DeviceInfo, check_start
from vidpipe.hw.registry import backend_options
from vidpipe.hw.settings import BackendSettings

COLORS = {  # BGR, as the frames are
    "black": (0, 0, 0), "white": (255, 255, 255), "red": (0, 0, 255), "green": (0, 255, 0),
    "blue": (255, 0, 0), "yellow": (0, 255, 255), "magenta": (255, 0, 255), "cyan": (255, 255, 0),
    "gray": (128, 128, 128),
}
REFERENCE = np.array(list(COLORS.values()), np.float32)


@dataclass(frozen=True)
class MeanColorOptions:
    sharpness: float = 8.0  # how peaked the scores are


class MeanColorBackend:
    name = "mean-color"
    labels_meaningful = True

    def __init__(self, settings: BackendSettings) -> None:
        self.max_batch, self.buffer_sets = settings.batch, settings.buffer_sets
        self.sharpness = backend_options(settings, MeanColorOptions).sharpness
        self._inputs: np.ndarray | None = None
        self._running: dict[int, int] = {}

    def open(self) -> None:
        self._inputs = np.zeros((self.buffer_sets, self.max_batch, *INPUT_SHAPE), INPUT_DTYPE)

    def input_buffer(self, buffer_set: int) -> np.ndarray:
        assert self._inputs is not None, "open() first"
        return self._inputs[buffer_set]

    def start(self, buffer_set: int, n: int) -> None:
        check_start(self.name, buffer_set, n, self.buffer_sets, self.max_batch, self._running)
        self._running[buffer_set] = n

    def wait(self, buffer_set: int) -> BatchOutput:
        n = self._running.pop(buffer_set)
        assert self._inputs is not None
        pixels = self._inputs[buffer_set, :n].view(np.uint8).reshape(n, -1, 3)  # the bytes of BGR frames
        distance = np.linalg.norm(pixels.mean(axis=1)[:, None, :] - REFERENCE[None], axis=2) / 441.7
        order = np.argsort(distance, axis=1)[:, :TOP_K]
        logits = -self.sharpness * np.take_along_axis(distance, order, axis=1)
        scores = np.exp(logits) / np.exp(-self.sharpness * distance).sum(axis=1, keepdims=True)
        return BatchOutput(order.astype(np.uint32), scores.astype(np.float32), 0.0, 0.0, 0.0)

    def close(self) -> None:
        self._inputs = None
        self._running.clear()

    def class_names(self) -> list[str]:
        return list(COLORS)


SPEC = BackendSpec(
    name="mean-color",
    summary="the reference colour nearest each frame's mean colour (an example plug-in)",
    create=lambda settings, index: MeanColorBackend(settings),
    fingerprint=lambda settings: {"sharpness": backend_options(settings, MeanColorOptions).sharpness},
    devices=lambda settings: [DeviceInfo("mean-color", "numpy", f"available: {len(COLORS)} colours")],
    options=MeanColorOptions,
)

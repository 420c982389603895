"""What the infer stage tests share: a card whose buffers live in host memory (subclasses add
start() and wait()), and the tensor ring fixture (imported by tests/stages/conftest.py)."""

from __future__ import annotations

import numpy as np

from vidpipe.hw.base import INPUT_DTYPE, INPUT_SHAPE


class HostCard:
    """The Accelerator protocol's buffers and bookkeeping; start()/wait() are the subclass's."""

    name = "fake"
    labels_meaningful = False

    def __init__(self, max_batch: int, buffer_sets: int = 2) -> None:
        self.max_batch, self.buffer_sets = max_batch, buffer_sets
        self.buffers = np.zeros((buffer_sets, max_batch, *INPUT_SHAPE), INPUT_DTYPE)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def class_names(self) -> list[str]:
        return ["fake"] * 1000

    def input_buffer(self, k: int) -> np.ndarray:
        return self.buffers[k]

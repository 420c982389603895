"""Preprocess: frame slot -> the accelerator's 224x224x3 int8 tensor in a tensor slot.

The ResNet50-PYNQ host code resizes the whole BGR frame with cv2.resize (bilinear, no crop, no
mean subtraction) and stores the uint8 bytes in the int8 buffer bit for bit; every backend takes
exactly this tensor. cv2.resize writes straight into the shared-memory slot (no extra copy).

May block: on a free tensor slot and on a full output queue. Live frames older than the
staleness budget are dropped here, before any work is spent on them, and counted.
Inputs that came as one batch (Channel.put_many: file sources) leave as one batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import cv2
import numpy as np

from vidpipe.hw.base import INPUT_SHAPE
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.stage import Stage
from vidpipe.stages.descriptors import FrameRef, TensorRef

SIZE = (INPUT_SHAPE[1], INPUT_SHAPE[0])  # cv2 wants (width, height)


def preprocess_frame(frame: np.ndarray, out: np.ndarray | None = None, mode: str = "full") -> np.ndarray:
    """BGR uint8 frame -> (224, 224, 3) uint8 (view it as int8 for the device buffer)."""
    if mode == "center-crop":
        h, w = frame.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        frame = frame[top : top + side, left : left + side]
    elif mode != "full":
        raise ValueError(f"unknown resize mode {mode!r}")
    return cv2.resize(frame, SIZE, dst=out, interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class PreprocessParams:
    frames: SlotRing  # read: decoded frames
    tensors: SlotRing  # written: (224, 224, 3) int8 tensors
    resize: str = "full"  # "full" (the reference host code) or "center-crop"
    stale_after_s: float = 0.0  # live: frames older than this are dropped, not resized; 0 = never


class PreprocessStage(Stage[PreprocessParams]):
    """FrameRef in, TensorRef out (a dropped marker for a stale live frame)."""

    accepts = (FrameRef,)

    def open(self) -> None:
        # Parallelism comes from the worker processes. Under fork the parent already set one
        # thread (jobs.graph.run_graph): resetting a thread pool inherited through fork hangs.
        if cv2.getNumThreads() != 1:
            cv2.setNumThreads(1)

    def handle(self, item: FrameRef) -> None:
        p = self.params
        if p.stale_after_s > 0 and time.time() - item.t_capture > p.stale_after_s:
            stale = replace(item, dropped=True, drop_reason="stale")
            self.emit(TensorRef(stale, -1, time.time()))  # the sink counts it
            return
        slot = self.acquire(p.tensors)
        frame = p.frames.view(item.slot, (item.height, item.width, 3))
        preprocess_frame(frame, p.tensors.view(slot, INPUT_SHAPE), p.resize)
        self.emit(TensorRef(item, slot, time.time()))

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
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from hw.base import INPUT_SHAPE
from pipeline.channels import Channel, Stop
from pipeline.shm import SlotRing
from pipeline.stage import StageContext
from stages.descriptors import FrameRef, TensorRef

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


def run_preprocess(
    ctx: StageContext,
    frames: SlotRing,
    tensors: SlotRing,
    inbox: Channel,
    out: Channel,
    mode: str,
    stale_after_s: float,
) -> None:
    # Parallelism comes from the worker processes. Under fork the parent already set one thread
    # (graph.run_graph): resetting a thread pool inherited through fork hangs in OpenCV.
    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)
    while True:
        done: list[Any] = []  # what one batch of inputs became: sent on as one batch (put_many)
        for item in inbox.get_many():
            if isinstance(item, Stop):
                out.put_many(done)
                return
            if not isinstance(item, FrameRef):
                done.append(item)  # stream start/end markers travel with the frames
                continue
            if stale_after_s > 0 and time.time() - item.t_capture > stale_after_s:
                done.append(TensorRef(replace(item, dropped=True), -1, time.time()))  # the sink counts it
                continue
            slot = tensors.acquire(timeout=0)
            if slot is None:  # no free tensor slot: pass on what we hold before waiting for one
                out.put_many(done)
                done.clear()
                slot = tensors.acquire_or_abort(inbox.aborted)
            frame = frames.view(item.slot, (item.height, item.width, 3))
            preprocess_frame(frame, tensors.view(slot, INPUT_SHAPE), mode)
            done.append(TensorRef(item, slot, time.time()))
        out.put_many(done)


from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from tests.media import pattern_frame
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.testing import run_inline
from vidpipe.stages.descriptors import FrameRef
from vidpipe.stages.preprocess import PreprocessParams, PreprocessStage, preprocess_frame


@pytest.mark.parametrize("shape", [(360, 640, 3), (1080, 1920, 3), (224, 224, 3), (121, 97, 3)])
def test_full_resize_is_cv2_resize_bit_for_bit(shape: tuple[int, int, int]) -> None:
    frame = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    out = np.empty((224, 224, 3), np.uint8)
    got = preprocess_frame(frame, out)
    assert got is out  # written in place (the shared-memory slot)
    expected = cv2.resize(frame, (224, 224), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(out, expected)
    # the accelerator's int8 buffer holds the same bytes (ResNet50-PYNQ stores uint8 into int8)
    assert out.view(np.int8).tobytes() == expected.tobytes()


def test_center_crop_takes_the_middle_square() -> None:
    frame = np.zeros((100, 300, 3), np.uint8)
    frame[:, 100:200] = 255  # only the central square is white
    out = preprocess_frame(frame, mode="center-crop")
    assert out.shape == (224, 224, 3) and out.min() == 255


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        preprocess_frame(np.zeros((10, 10, 3), np.uint8), mode="stretch")


@pytest.fixture
def rings() -> Iterator[tuple[SlotRing, SlotRing]]:
    ctx = multiprocessing.get_context("spawn")
    frames, tensors = SlotRing(ctx, 4, 120 * 160 * 3, "frames"), SlotRing(ctx, 4, 224 * 224 * 3, "tensors")
    yield frames, tensors
    for ring in (frames, tensors):
        ring.close()
        ring.unlink()


def test_the_stage_resizes_into_tensor_slots_and_drops_stale_frames(rings: tuple[SlotRing, SlotRing]) -> None:
    frames, tensors = rings
    frames.view(0, (120, 160, 3))[:] = pattern_frame(3, 160, 120)
    fresh = FrameRef("cam", 0, 0, 120, 160, 0.0, time.time())
    stale = FrameRef("cam", 1, 1, 120, 160, 0.04, time.time() - 5)
    got = run_inline(PreprocessStage, PreprocessParams(frames, tensors, stale_after_s=1.0), [fresh, "marker", stale])
    tensor, marker, dropped = got.items
    assert tensor.frame == fresh and marker == "marker" and dropped.frame.dropped and dropped.tensor_slot == -1
    expected = cv2.resize(pattern_frame(3, 160, 120), (224, 224), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(tensors.view(tensor.tensor_slot, (224, 224, 3)), expected)

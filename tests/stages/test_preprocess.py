from __future__ import annotations

import cv2
import numpy as np
import pytest

from stages.preprocess import preprocess_frame


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

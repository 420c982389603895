"""Fixtures for the cpu backend tests: the models are built once per session, not per test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw.model_build import build_model, ensure_model, photos, to_tensor
from hw.paths import default_model_path


@pytest.fixture(scope="session")
def int8_model() -> Path:
    """The int8 model in the user cache (what `make test` builds first); built here if missing."""
    return ensure_model(default_model_path())


@pytest.fixture(scope="session")
def fp32_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The float model (not quantized), to check what quantization changes. Takes well under 1 s."""
    return build_model(tmp_path_factory.mktemp("fp32") / "fp32.onnx", fp32=True)


@pytest.fixture(scope="session")
def photo_tensors() -> dict[str, np.ndarray]:
    """scikit-image's real photos as accelerator tensors: int8 (224, 224, 3) BGR bytes."""
    return {name: to_tensor(img) for name, img in photos().items()}

"""Fixtures for the cpu backend tests (the models are built once per session, not per test) and
for the emulated card (a stand-in model, the card, its xclbin and FC weights)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import vidpipe.hw.emulated as emu
from vidpipe.hw.model_build import build_model, ensure_model, photos, to_tensor
from vidpipe.hw.paths import default_model_path


@pytest.fixture(scope="session")
def int8_model() -> Path:
    """The int8 model in the user cache (what `make test` builds first); built here if missing."""
    return ensure_model(default_model_path())


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, int8_model: Path) -> Iterator[Path]:
    """A model cache of the test module's own (the bundled model linked in), set for every process
    it starts: `vidpipe model import/teach` write there, never into the user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    (folder / int8_model.name).symlink_to(int8_model)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIDPIPE_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def fp32_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The float model (not quantized), to check what quantization changes. Takes well under 1 s."""
    return build_model(tmp_path_factory.mktemp("fp32") / "fp32.onnx", fp32=True)


@pytest.fixture(scope="session")
def photo_tensors() -> dict[str, np.ndarray]:
    """scikit-image's real photos as accelerator tensors: int8 (224, 224, 3) BGR bytes."""
    return {name: to_tensor(img) for name, img in photos().items()}


class FakeModel:
    """Stands in for CpuModel.classify: ids derived from the pixels, optionally held on a gate."""

    def __init__(self) -> None:
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.fail = False

    @staticmethod
    def expected(batch: np.ndarray) -> np.ndarray:
        sums = batch.reshape(len(batch), -1).astype(np.int64).sum(axis=1)
        return ((sums[:, None] + np.arange(5)) % 1000).astype(np.uint32)

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "test never opened the gate"
        if self.fail:
            raise RuntimeError("model exploded")
        return self.expected(batch), np.full((len(batch), 5), 0.2, np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("card")
    np.save(d / "fc.npy", np.random.default_rng(0).integers(-128, 128, (1000, 2048), dtype=np.int8))
    return {"xclbin": emu.write_emulated_xclbin(d / "resnet50.xclbin"), "fc": d / "fc.npy", "dir": d}


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def card(model: FakeModel) -> Iterator[emu.EmulatedDevice]:
    emu.disable()
    (device,) = emu.enable(1, classify=model)
    yield device
    emu.disable()

"""The cpu backend on real photos: right labels, int8 agrees with fp32, the Accelerator protocol."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest

from vidpipe.hw.cpu import CpuBackend, CpuModel, describe_model_state
from vidpipe.hw.imagenet import class_names
from vidpipe.hw.settings import BackendSettings, CpuSettings
from vidpipe.pipeline.errors import BackendError

CATS = {"tabby", "tiger cat", "Egyptian cat"}
NAMES = class_names()


@pytest.fixture(scope="module")
def int8(int8_model: Path) -> CpuModel:
    return CpuModel(int8_model)


@pytest.fixture(scope="module")
def fp32(fp32_model: Path) -> CpuModel:
    return CpuModel(fp32_model)


def top1(model: CpuModel, tensor: np.ndarray) -> str:
    ids, _ = model.classify(tensor[None])
    return NAMES[ids[0, 0]]


def test_cat_and_espresso(int8: CpuModel, photo_tensors: dict[str, np.ndarray]) -> None:
    assert top1(int8, photo_tensors["chelsea"]) in CATS
    assert top1(int8, photo_tensors["coffee"]) == "espresso"


def test_int8_keeps_the_fp32_top1(int8: CpuModel, fp32: CpuModel, photo_tensors: dict[str, np.ndarray]) -> None:
    for name in ("chelsea", "coffee"):
        assert top1(int8, photo_tensors[name]) == top1(fp32, photo_tensors[name]), name
    batch = np.stack(list(photo_tensors.values()))
    agree = (int8.classify(batch)[0][:, 0] == fp32.classify(batch)[0][:, 0]).sum()
    assert agree >= len(batch) - 2  # 12 of 12 when measured; leave room for other CPUs' kernels


def test_output_format(int8: CpuModel, photo_tensors: dict[str, np.ndarray]) -> None:
    ids, scores = int8.classify(np.stack([photo_tensors["chelsea"], photo_tensors["coffee"]]))
    assert ids.dtype == np.uint32 and ids.shape == (2, 5)
    assert scores.dtype == np.float32 and scores.shape == (2, 5)
    assert (np.diff(scores, axis=1) <= 0).all() and (scores > 0).all() and (scores.sum(axis=1) <= 1.0001).all()
    assert scores[1, 0] > 0.5  # the espresso is a confident call
    assert all(len(set(row)) == 5 for row in ids.tolist())


def test_batch_equals_one_by_one(int8: CpuModel, photo_tensors: dict[str, np.ndarray]) -> None:
    names = ["chelsea", "coffee", "astronaut", "rocket", "camera"]
    ids, scores = int8.classify(np.stack([photo_tensors[n] for n in names]))
    for i, name in enumerate(names):
        one_ids, one_scores = int8.classify(photo_tensors[name][None])
        np.testing.assert_array_equal(one_ids[0], ids[i])
        np.testing.assert_allclose(one_scores[0], scores[i], atol=1e-5)


def test_bad_input(int8: CpuModel) -> None:
    ids, scores = int8.classify(np.empty((0, 224, 224, 3), np.int8))
    assert ids.shape == scores.shape == (0, 5)
    with pytest.raises(ValueError, match="int8"):
        int8.classify(np.zeros((1, 224, 224, 3), np.uint8))
    with pytest.raises(ValueError, match="int8"):
        int8.classify(np.zeros((1, 112, 112, 3), np.int8))


def test_missing_model_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="vidpipe model"):
        CpuModel(tmp_path / "absent.onnx")
    assert "vidpipe model" in describe_model_state(tmp_path / "absent.onnx")


def test_malformed_model(tmp_path: Path) -> None:
    (tmp_path / "garbage.onnx").write_bytes(b"\x00not an onnx model" * 10)
    with pytest.raises(BackendError, match="malformed"):
        CpuModel(tmp_path / "garbage.onnx")
    identity = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Identity", ["x"], ["y"])],
            "other",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])],
        ),
        opset_imports=[onnx.helper.make_opsetid("", 17)],
    )
    identity.ir_version = 8
    onnx.save(identity, tmp_path / "other.onnx")
    with pytest.raises(BackendError, match="not a vidpipe cpu model"):
        CpuModel(tmp_path / "other.onnx")


def test_describe_built_model(int8_model: Path) -> None:
    state = describe_model_state(int8_model)
    assert state.startswith("built: ") and str(int8_model) in state and "MB" in state


def settings(model: Path, max_batch: int = 4) -> BackendSettings:
    return BackendSettings(name="cpu", max_batch=max_batch, buffer_sets=2, cpu=CpuSettings(model=str(model)))


def test_backend_ping_pong(int8_model: Path, photo_tensors: dict[str, np.ndarray]) -> None:
    backend = CpuBackend(settings(int8_model))
    backend.open()
    try:
        assert backend.labels_meaningful and len(backend.class_names()) == 1000
        a, b = backend.input_buffer(0), backend.input_buffer(1)
        assert a.shape == (4, 224, 224, 3) and a.dtype == np.int8 and not np.shares_memory(a, b)
        a[:2] = photo_tensors["chelsea"]
        backend.start(0, 2)
        b[:3] = photo_tensors["coffee"]  # filled while batch 0 may still be running
        backend.start(1, 3)
        first, second = backend.wait(0), backend.wait(1)
        assert first.top5.shape == (2, 5) and second.top5.shape == (3, 5)
        assert {NAMES[i] for i in first.top5[:, 0]} <= CATS
        assert [NAMES[i] for i in second.top5[:, 0]] == ["espresso"] * 3
        assert first.scores is not None and first.scores.shape == (2, 5)
        assert first.compute_s > 0 and first.upload_s == first.download_s == 0
        a[:1] = photo_tensors["coffee"]  # a set is reusable after wait()
        backend.start(0, 1)
        assert NAMES[backend.wait(0).top5[0, 0]] == "espresso"
    finally:
        backend.close()
    backend.close()  # idempotent


def test_backend_protocol_misuse(int8_model: Path) -> None:
    with CpuBackend(settings(int8_model, max_batch=2)) as backend:
        backend.input_buffer(0)[:] = 0
        backend.start(0, 2)
        with pytest.raises(BackendError, match="twice"):
            backend.start(0, 2)
        backend.wait(0)
        with pytest.raises(BackendError, match="without a started batch"):
            backend.wait(1)
        with pytest.raises(ValueError):
            backend.start(1, 3)
    with pytest.raises(BackendError, match="open"):
        backend.input_buffer(0)


def test_backend_missing_model(tmp_path: Path) -> None:
    backend = CpuBackend(settings(tmp_path / "absent.onnx"))
    with pytest.raises(BackendError, match="vidpipe model"):
        backend.open()
    backend.close()  # safe after a failed open


def test_backend_rejects_single_buffering(int8_model: Path) -> None:
    backend = CpuBackend(dataclasses.replace(settings(int8_model), buffer_sets=1))
    with pytest.raises(BackendError, match="buffer_sets"):
        backend.open()

"""vidpipe.hw.model_build and hw.paths: graph structure, the folded input contract, CLI and atomic writes."""

from __future__ import annotations

import collections
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from vidpipe.hw import model_build
from vidpipe.hw.model_build import (
    build_fp32,
    build_model,
    calibration_tensors,
    ensure_model,
    main,
    same_pads,
    to_tensor,
)
from vidpipe.hw.paths import cache_dir, default_model_path
from vidpipe.hw.torch_checkpoint import load_state_dict
from vidpipe.pipeline.errors import BackendError


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return load_state_dict(model_build.checkpoint_path())


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIDPIPE_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"
    assert default_model_path() == tmp_path / "explicit" / "efficientnet_lite0_int8.onnx"
    monkeypatch.delenv("VIDPIPE_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "vidpipe"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "vidpipe"


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pads", "out"),
    [
        (224, 3, 2, [0, 0, 1, 1], 112),
        (56, 5, 2, [1, 1, 2, 2], 28),
        (14, 5, 1, [2, 2, 2, 2], 14),
        (112, 3, 1, [1, 1, 1, 1], 112),
        (7, 1, 1, [0, 0, 0, 0], 7),
    ],
)
def test_tf_same_padding(size: int, kernel: int, stride: int, pads: list[int], out: int) -> None:
    assert same_pads(size, kernel, stride) == (pads, out)


def test_graph_structure(weights: dict[str, np.ndarray]) -> None:
    model = build_fp32(weights)
    ops = collections.Counter(node.op_type for node in model.graph.node)
    assert ops["Conv"] == 1 + 16 + 15 + 16 + 1  # stem, depthwise, expand (not block 0), project, head
    assert ops["Add"] == 1 + 9  # input byte wrap-around + residuals of the repeated blocks
    assert ops["Clip"] == 1 + 16 + 15 + 1  # ReLU6 everywhere except after the projections
    (inp,) = model.graph.input
    assert inp.name == "input" and inp.type.tensor_type.elem_type == onnx.TensorProto.INT8
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", 224, 224, 3]
    assert [o.name for o in model.graph.output] == ["logits", "probs"]


def test_preprocessing_is_exact_for_every_byte(weights: dict[str, np.ndarray]) -> None:
    """The graph sees int8 v as the byte v mod 256 and normalizes it to (byte - 127) / 128."""
    model = build_fp32(weights)
    model.graph.output.append(onnx.helper.make_tensor_value_info("pre.norm", onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    pixels = np.resize(np.arange(256, dtype=np.uint8), (1, 224, 224, 3))
    (norm,) = session.run(["pre.norm"], {"input": pixels.view(np.int8)})
    expected = (pixels.astype(np.float32) - 127) / 128
    np.testing.assert_array_equal(norm, expected.transpose(0, 3, 1, 2))


def test_missing_or_extra_weights_are_malformed(weights: dict[str, np.ndarray]) -> None:
    broken = {k: v for k, v in weights.items() if k != "_blocks.3._bn1.running_var"}
    with pytest.raises(BackendError, match="malformed weights"):
        build_fp32(broken)
    extra = dict(weights, **{"_blocks.16._depthwise_conv.weight": np.zeros((8, 1, 3, 3), np.float32)})
    with pytest.raises(BackendError, match="malformed weights"):
        build_fp32(extra)


def test_to_tensor_keeps_the_bytes() -> None:
    img = np.random.default_rng(0).integers(0, 256, (300, 451, 3), dtype=np.uint8)
    tensor = to_tensor(img)
    assert tensor.dtype == np.int8 and tensor.shape == (224, 224, 3)
    np.testing.assert_array_equal(tensor.view(np.uint8), cv2.resize(img, (224, 224)))


def test_calibration_set() -> None:
    images = calibration_tensors()
    assert images.shape == (48, 224, 224, 3) and images.dtype == np.int8
    assert len({img.tobytes() for img in images}) == 48  # every variant differs


def test_ensure_model_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"already there")
    assert ensure_model(path) == path
    assert path.read_bytes() == b"already there"


def test_cli_fp32_build_is_atomic_and_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "fp32.onnx"
    assert main(["--fp32", "--output", str(out)]) == 0
    assert "built fp32 model" in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == ["fp32.onnx"]  # no temp file left
    onnx.checker.check_model(str(out))
    assert main(["--fp32", "--output", str(out)]) == 0
    assert "model present" in capsys.readouterr().out


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(model: onnx.ModelProto, output: Path) -> None:
        output.write_bytes(b"half a model")
        raise RuntimeError("calibration crashed")

    monkeypatch.setattr(model_build, "_quantize", broken)
    with pytest.raises(RuntimeError):
        build_model(tmp_path / "int8.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_int8_build_from_scratch(tmp_path: Path, int8_model: Path) -> None:
    """The full quantized build (a few seconds) gives a QDQ graph the size of the cached one."""
    out = build_model(tmp_path / "int8.onnx")
    model = onnx.load(str(out))
    ops = collections.Counter(node.op_type for node in model.graph.node)
    assert ops["QuantizeLinear"] > 40 and ops["DequantizeLinear"] > 100
    assert 3e6 < out.stat().st_size < 8e6
    assert abs(out.stat().st_size - int8_model.stat().st_size) < 0.05 * int8_model.stat().st_size

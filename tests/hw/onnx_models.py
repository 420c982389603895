"""Image classifiers as people export them, made by the tests: the bundled EfficientNet-Lite0 as a
plain float NCHW RGB graph with its own normalization, and small onnx.helper networks (NHWC, BGR,
another size, two inputs, the wrong rank...), plus what onnxruntime says of them run directly."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from vidpipe.hw.model_build import build_fp32, checkpoint_path
from vidpipe.hw.torch_checkpoint import load_state_dict

MEAN_255, STD_255 = 127.0, 128.0  # the bundled model's normalization, on the 0..255 scale


def exported_efficientnet(path: Path) -> Path:
    """The bundled model without vidpipe's input contract: float (1, 3, 224, 224) RGB pixels
    normalized (x - 127) / 128 -> logits (1, 1000), batch fixed to 1 as torch exports it by
    default; the normalization is said in its metadata (mean/std on the 0..255 scale)."""
    model = build_fp32(load_state_dict(checkpoint_path()))
    keep = [n for n in model.graph.node if not n.name.startswith("pre.") and n.op_type != "Softmax"]
    next(n for n in keep if n.name == "_conv_stem").input[0] = "pixels"
    inits = []
    for init in model.graph.initializer:
        if init.name == "_conv_stem.w":  # the build folded BGR into the stem: unfold it (RGB input)
            init = numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(init)[:, ::-1]), init.name)
        inits.append(init)
    used = {i for n in keep for i in n.input}
    graph = helper.make_graph(keep, "exported", [_float("pixels", [1, 3, 224, 224])], [_float("logits", [1, 1000])],
                              [i for i in inits if i.name in used])
    return _save(graph, path, {"mean": f"[{MEAN_255}, {MEAN_255}, {MEAN_255}]",
                               "std": f"[{STD_255}, {STD_255}, {STD_255}]", "Image.BitmapPixelFormat": "Rgb8"})


def exported_input(bgr_frame: np.ndarray) -> np.ndarray:
    """What exported_efficientnet takes for one decoded frame, made as vidpipe's preprocess makes
    its tensor (the whole frame to 224x224, bilinear) and as the exporter documents the rest."""
    rgb = cv2.cvtColor(cv2.resize(bgr_frame, (224, 224), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    return ((rgb.astype(np.float32) - MEAN_255) / STD_255).transpose(2, 0, 1)[None]


def tiny_net(path: Path, layout: str = "NHWC", size: int = 64, classes: int = 4, metadata: dict | None = None,
             inputs: int = 1, rank: int = 4, opset: int = 17) -> Path:
    """A small classifier: 1x1 conv (each output class weighs the three channels differently), mean
    over the picture, softmax. `inputs`, `rank`, `opset` make it wrong on purpose."""
    w = np.array([[1.0, -1.0, 0.5], [-0.5, 2.0, 0.0], [0.0, 0.3, -1.5], [1.2, 0.2, 0.7]], np.float32)[:classes]
    shape = [None, size, size, 3] if layout == "NHWC" else [None, 3, size, size]
    nodes = [helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2])] if layout == "NHWC" else []
    x = "nchw" if layout == "NHWC" else "image"
    nodes += [helper.make_node("Conv", [x, "w"], ["conv"]),
              helper.make_node("GlobalAveragePool", ["conv"], ["pool"]),
              helper.make_node("Flatten", ["pool"], ["flat"]),
              helper.make_node("Softmax", ["flat"], ["scores"], axis=1)]
    graph_inputs = [_float("image", ["N", *shape[1:rank]])]
    graph_inputs += [_float(f"extra{i}", ["N", 3]) for i in range(inputs - 1)]
    graph = helper.make_graph(nodes, "tiny", graph_inputs, [_float("scores", ["N", classes])],
                              [numpy_helper.from_array(w[:, :, None, None], "w")])
    return _save(graph, path, metadata or {}, opset)


def tiny_input(bgr_frame: np.ndarray, size: int, mean: tuple, std: tuple, rgb: bool, layout: str) -> np.ndarray:
    """tiny_net's input for one frame, made with OpenCV and numpy as its exporter would."""
    img = cv2.resize(cv2.resize(bgr_frame, (224, 224)), (size, size), interpolation=cv2.INTER_LINEAR)
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if rgb else img
    x = (img.astype(np.float32) / 255 - np.array(mean, np.float32)) / np.array(std, np.float32)
    return (x.transpose(2, 0, 1) if layout == "NCHW" else x)[None]


def run_directly(path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime on the exported model itself: its first output."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _float(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _save(graph: onnx.GraphProto, path: Path, metadata: dict, opset: int = 17) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="a-test-exporter")
    model.ir_version = 8
    helper.set_model_props(model, metadata)
    onnx.save(model, path)
    return path

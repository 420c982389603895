"""`vidpipe model import`: a standard exported image classifier made into a vidpipe cpu model.

    int8 (N,224,224,3) BGR bytes --[vidpipe.pre.*]--> the model's own input --[the model, m.*]-->
        its scores --[vidpipe.post.*]--> "probs" (N, classes [+ unknown])

The input contract (hw.base) is folded into the graph as the bundled model's build does
(hw.model_build.byte_values): bytes -> 0..255, resized to the model's size (bilinear, half pixel:
cv2.INTER_LINEAR's), BGR -> RGB where it wants RGB, (x / 255 - mean) / std, NCHW where it wants it.
The model's own names are prefixed `m.` (onnx.compose.add_prefix), so no name of the wrapper clashes
with its. Logits get a Softmax; `unknown_below` adds an `unknown` class (add_tail). Then static int8
quantization (the wrapper's nodes stay float) and the model cache (hw.model_cache).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from vidpipe.hw.base import INPUT_SHAPE
from vidpipe.hw.model_build import INPUT_NAME, OUTPUT_PROBS, GraphBuilder, byte_values, calibration_tensors, quantize
from vidpipe.hw.model_cache import LABELS_KEY, UNKNOWN, ModelInfo, check_free, now, staging_dir, store
from vidpipe.hw.model_check import Checked, Hints, check_import
from vidpipe.pipeline.errors import BackendError, ConfigError, one_line

PREFIX = "vidpipe."  # the wrapper's nodes: never quantized
SIZE = INPUT_SHAPE[0]


@dataclass(frozen=True)
class ImportRequest:
    """What `vidpipe model import` was asked to do."""

    model: Path
    labels: Path
    name: str
    hints: Hints = field(default_factory=Hints)
    quantize: bool = True
    calibration: tuple[np.ndarray, ...] = ()  # BGR images; empty: the bundled photos
    unknown_below: float = 0.0
    force: bool = False


def wrap(checked: Checked, unknown_below: float = 0.0) -> tuple[onnx.ModelProto, list[str]]:
    """The float model with the input contract in front and the tail behind; its class names."""
    inner = onnx.compose.add_prefix(checked.model, "m.")
    pre = GraphBuilder({})
    _preprocess(pre, checked, _image_input(inner))
    tail = GraphBuilder({})
    out = "m." + checked.output
    if checked.output_rank == 4:  # (N, C, 1, 1) from a conv head
        out = tail.op("Flatten", [out], f"{PREFIX}post.flatten", axis=1)
    if checked.output_dtype != TensorProto.FLOAT:  # a float16 model: scores in float32
        out = tail.op("Cast", [out], f"{PREFIX}post.float", to=TensorProto.FLOAT)
    probs = out if checked.is_probs else tail.op("Softmax", [out], f"{PREFIX}post.softmax", axis=1)
    labels = add_tail(tail, probs, checked.labels, unknown_below)
    graph = helper.make_graph(
        [*pre.nodes, *inner.graph.node, *tail.nodes], "vidpipe_imported",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.INT8, ["N", *INPUT_SHAPE])],
        [helper.make_tensor_value_info(OUTPUT_PROBS, TensorProto.FLOAT, ["N", len(labels)])],
        [*inner.graph.initializer, *pre.inits, *tail.inits],
        sparse_initializer=list(inner.graph.sparse_initializer),
    )  # value_info is left out: it may pin the batch to the export's 1
    model = helper.make_model(graph, opset_imports=list(inner.opset_import), functions=list(inner.functions),
                              producer_name="vidpipe")
    model.ir_version = inner.ir_version
    return model, labels


def _image_input(model: onnx.ModelProto) -> str:
    weights = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in weights)


def _preprocess(g: GraphBuilder, checked: Checked, target: str) -> None:
    """Bytes (NHWC BGR) -> `target`, the model's input as it wants it."""
    spec = checked.spec
    p = PREFIX + "pre."
    x = byte_values(g, p)
    if (spec.height, spec.width) != (SIZE, SIZE):
        batch = g.op("Slice", [g.op("Shape", [x], f"{p}shape"), g.const(f"{p}s0", np.array([0], np.int64)),
                               g.const(f"{p}s1", np.array([1], np.int64))], f"{p}batch")
        sizes = g.op("Concat", [batch, g.const(f"{p}hw", np.array([spec.height, spec.width, 3], np.int64))],
                     f"{p}sizes", axis=0)
        x = g.op("Resize", [x, "", "", sizes], f"{p}resize", mode="linear",
                 coordinate_transformation_mode="half_pixel")
    if spec.rgb:
        x = g.op("Gather", [x, g.const(f"{p}rgb", np.array([2, 1, 0], np.int64))], f"{p}to_rgb", axis=3)
    std, mean = np.array(spec.std, np.float32), np.array(spec.mean, np.float32)
    x = g.op("Mul", [x, g.const(f"{p}scale", 1 / (255 * std))], f"{p}scale_mul")
    x = g.op("Sub", [x, g.const(f"{p}mean", mean / std)], f"{p}normalized")
    if spec.layout == "NCHW":
        x = g.op("Transpose", [x], f"{p}nchw", perm=[0, 3, 1, 2])
    if spec.dtype != TensorProto.FLOAT:
        x = g.op("Cast", [x], f"{p}cast_out", to=spec.dtype)
    g.nodes.append(helper.make_node("Identity", [x], [target], name=f"{p}out"))


def add_tail(g: GraphBuilder, probs: str, labels: list[str], unknown_below: float,
             other: int | None = None) -> list[str]:
    """`probs` (N, C) -> the output "probs"; returns its class names. With `unknown_below` > 0 or an
    `other` class (teach's examples of none of the classes), one more class, `unknown`: it scores
    the threshold on a frame where no class reaches it (else 0), or p(other) if that is more;
    `other` itself is folded into it. So `unknown` shows up among a frame's labels only where it
    is a real answer."""
    p = PREFIX + "post."
    if unknown_below <= 0 and other is None:
        g.nodes.append(helper.make_node("Identity", [probs], [OUTPUT_PROBS], name=f"{p}out"))
        return list(labels)
    kept = [i for i in range(len(labels)) if i != other]
    named = g.op("Gather", [probs, g.const(f"{p}kept", np.array(kept, np.int64))], f"{p}named", axis=1)
    g.nodes.append(helper.make_node("TopK", [named, g.const(f"{p}k", np.array([1], np.int64))],
                                    [f"{p}best", f"{p}best_index"], name=f"{p}best", axis=1))
    threshold = g.const(f"{p}threshold", np.array(unknown_below, np.float32))
    unsure = g.op("Less", [f"{p}best", threshold], f"{p}unsure")
    unknown = g.op("Where", [unsure, threshold, g.const(f"{p}zero", np.array(0, np.float32))], f"{p}unknown")
    if other is not None:
        col = g.op("Slice", [probs, g.const(f"{p}c0", np.array([other], np.int64)),
                             g.const(f"{p}c1", np.array([other + 1], np.int64)),
                             g.const(f"{p}axis", np.array([1], np.int64))], f"{p}other")
        unknown = g.op("Max", [col, unknown], f"{p}unknown_or_other")
    g.nodes.append(helper.make_node("Concat", [named, unknown], [OUTPUT_PROBS], name=f"{p}out", axis=1))
    return [labels[i] for i in kept] + [UNKNOWN]


def label_metadata(model: onnx.ModelProto, labels: list[str], described: str) -> None:
    """The class names (and what the input is) into the model's own metadata."""
    props = {p.key: p.value for p in model.metadata_props}
    props.update({LABELS_KEY: json.dumps(labels), "vidpipe.input": "int8 NHWC (N,224,224,3) = uint8 BGR bytes",
                  "vidpipe.source_input": described})
    helper.set_model_props(model, props)


def run(model_path: Path, tensors: np.ndarray) -> np.ndarray:
    """The stored graph's "probs" on `tensors`, in batches, as the cpu backend runs it."""
    from vidpipe.hw.cpu import CpuModel

    model = CpuModel(model_path)
    return np.concatenate([model.probs(b) for b in np.array_split(tensors, max(1, len(tensors) // 16))])


def import_model(req: ImportRequest, say: Callable[[str], None] = print) -> ModelInfo:
    """Checks, wraps, quantizes and stores; nothing is written in the cache unless all of it works."""
    t0 = time.perf_counter()
    check_free(req.name, req.force)
    if not 0 <= req.unknown_below < 1:
        raise ConfigError(f"--unknown-below {req.unknown_below}: must be 0 (off) .. below 1")
    checked = check_import(req.model, req.labels, req.hints)
    say(f"{req.model.name}: {len(checked.labels)} classes; input {checked.spec.describe(sources=True)}")
    model, labels = wrap(checked, req.unknown_below)
    label_metadata(model, labels, checked.spec.describe())
    tensors = calibration_tensors(req.calibration or None)
    with staging_dir(req.name) as staging:
        float_path, int8_path = staging / "float.onnx", staging / "int8.onnx"
        onnx.save(model, float_path)
        reference = _batched(float_path, tensors, req.model)
        precision, final, extra = "float", float_path, {}
        if req.quantize:
            final, precision = int8_path, "int8"
            extra["int8_top1_agreement"] = _quantized(model, int8_path, tensors, reference, say)
        info = ModelInfo(req.name, tuple(labels), "imported", str(req.model.resolve()), precision,
                         checked.spec.describe(), created=now(), unknown_below=req.unknown_below,
                         extra={**extra, "import_s": round(time.perf_counter() - t0, 2)})
        return store(req.name, final, info)


def _batched(path: Path, tensors: np.ndarray, source: Path) -> np.ndarray:
    """The wrapped float model on the calibration images, in batches: it must take a batch."""
    try:
        return run(path, tensors)
    except Exception as exc:
        raise ConfigError(f"{source}: does not run on a batch of images ({one_line(exc)[:200]}); export it with a "
                          "dynamic batch axis (torch.onnx.export(..., dynamic_axes={'input': {0: 'N'}}))") from exc


def _quantized(model: onnx.ModelProto, path: Path, tensors: np.ndarray, reference: np.ndarray,
               say: Callable[[str], None]) -> float:
    """Quantizes to `path`; returns (and says) how often int8 keeps the float top-1."""
    exclude = [n.name for n in model.graph.node if n.name.startswith(PREFIX)]
    try:
        quantize(model, path, tensors, exclude)
        agree = float((run(path, tensors).argmax(1) == reference.argmax(1)).mean())
    except Exception as exc:
        raise BackendError(f"int8 quantization failed ({one_line(exc)[:200]}); --no-quantize keeps it float") from exc
    say(f"int8 keeps the float model's top-1 on {agree:.0%} of {len(tensors)} calibration images"
        + (" (low: consider --no-quantize, or --calibrate with your own images)" if agree < 0.9 else ""))
    return round(agree, 4)

"""What `vidpipe model import` checks in a user's ONNX classifier and its labels, and how it reads
the model's input: every problem at once, one line each (ConfigErrors), before anything is written.

    checked = check_import(Path("m.onnx"), Path("labels.txt"), Hints(size=(224, 224)))
    checked.spec.describe()   # "float NCHW RGB 224x224, mean (0.485, ...), std (...)"

The input's preprocessing comes, field by field, from the flags (Hints), else the model's metadata
(the ONNX image metadata `Image.BitmapPixelFormat` / `Image.NominalPixelRange`, or plain `mean`,
`std`, `input_size`, `channel_order`, `layout` keys), else the input's shape, else the usual
ImageNet export: RGB, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225) on the 0..1 scale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto

from vidpipe.pipeline.config import ConfigErrors
from vidpipe.pipeline.errors import ConfigError, one_line

MIN_OPSET = 13  # the oldest default-domain opset the wrapper's operators are written for
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FLOATS: dict[int, str] = {TensorProto.FLOAT: "float", TensorProto.FLOAT16: "float16"}
_RANGES = {"normalized_0_1": ((0.0,) * 3, (1.0,) * 3), "normalized_1_1": ((0.5,) * 3, (0.5,) * 3),
           "nominalrange_0_255": ((0.0,) * 3, (1 / 255,) * 3)}


@dataclass(frozen=True)
class Hints:
    """What the user said on the command line (None: not said)."""

    size: tuple[int, int] | None = None  # (height, width)
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    rgb: bool | None = None
    layout: str | None = None  # NCHW | NHWC
    outputs: str = "auto"  # logits | probs | auto (probs when a Softmax makes the output)


@dataclass(frozen=True)
class InputSpec:
    """How the model wants its pixels: value = (byte / 255 - mean) / std, per channel in its order."""

    layout: str
    rgb: bool
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dtype: int
    said_by: dict[str, str] = field(default_factory=dict)  # field -> flag | metadata | shape | default

    def describe(self, sources: bool = False) -> str:
        """`float NCHW RGB 224x224, mean (..), std (..)`, and where each came from if `sources`."""
        def nums(v: tuple[float, ...]) -> str:
            return "(" + ", ".join(f"{x:.4g}" for x in v) + ")"

        where = " [" + ", ".join(f"{k}: {v}" for k, v in self.said_by.items()) + "]" if sources else ""
        return (f"{FLOATS[self.dtype]} {self.layout} {'RGB' if self.rgb else 'BGR'} {self.height}x{self.width}, "
                f"mean {nums(self.mean)}, std {nums(self.std)}{where}")


@dataclass(frozen=True)
class Checked:
    """A model that passed: opset >= MIN_OPSET, one 4-D float image input, one (N, C) output."""

    model: onnx.ModelProto
    labels: list[str]
    spec: InputSpec
    output: str
    output_rank: int
    output_dtype: int
    is_probs: bool


def check_import(path: Path, labels_path: Path, hints: Hints) -> Checked:
    """The model and labels, checked; ConfigErrors with every problem, one line each."""
    problems: list[str] = []
    labels = _read_labels(labels_path, problems)
    model = _load(path, problems)
    if model is None:
        raise one_line_each(problems)
    image = _one_image_input(model, path, problems)
    out = _one_output(model, path, problems)
    classes = _dim(out, 1) if out is not None else None
    if labels and classes is not None and len(labels) != classes:
        problems.append(f"{labels_path}: {len(labels)} labels for the {classes} outputs of {path.name}")
    spec = _input_spec(model, image, hints, path, problems) if image is not None else None
    if not problems:  # onnxruntime would mostly repeat a problem found above
        model = _runnable(model, path, problems)
    if problems or spec is None or out is None or model is None:
        raise one_line_each(problems or [f"{path}: cannot be imported"])
    rank, dtype = len(out.type.tensor_type.shape.dim), out.type.tensor_type.elem_type
    return Checked(model, labels, spec, out.name, rank, dtype, _is_probs(model, out.name, hints.outputs))


def one_line_each(problems: list[str]) -> ConfigError:
    """The error to raise for these problems: one line each."""
    errors = [ConfigError(p) for p in problems]
    return errors[0] if len(errors) == 1 else ConfigErrors(errors)


def _read_labels(path: Path, problems: list[str]) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read the labels ({one_line(exc)})")
        return []
    names = [line.strip() for line in lines if line.strip()]  # a name twice is allowed (ImageNet has two cranes)
    if not names:
        problems.append(f"{path}: no labels (one class name a line, in the model's output order)")
    return names


def _load(path: Path, problems: list[str]) -> onnx.ModelProto | None:
    if not path.is_file():
        problems.append(f"{path}: no such file")
        return None
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf's DecodeError, onnx's ValidationError: a corrupt or foreign file
        problems.append(f"{path}: not a valid ONNX model ({one_line(exc)[:200]})")
        return None
    return model


def _one_image_input(model: onnx.ModelProto, path: Path, problems: list[str]) -> onnx.ValueInfoProto | None:
    weights = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]  # old exports list weights as inputs
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        problems.append(f"{path}: {len(inputs)} inputs ({names}); vidpipe feeds a classifier one image tensor")
        return None
    image = inputs[0]
    kind = image.type.tensor_type.elem_type
    if kind not in FLOATS:
        problems.append(f"{path}: input {image.name!r} is {TensorProto.DataType.Name(kind).lower()}, expected float")
    rank = len(image.type.tensor_type.shape.dim)
    if rank != 4:
        problems.append(f"{path}: input {image.name!r} has rank {rank} {_shape(image)}, expected 4: "
                        "(N, 3, H, W) or (N, H, W, 3)")
        return None
    return image


def _one_output(model: onnx.ModelProto, path: Path, problems: list[str]) -> onnx.ValueInfoProto | None:
    outputs = list(model.graph.output)
    if not outputs:
        problems.append(f"{path}: no outputs")
        return None
    out = outputs[0]  # more outputs (features, aux heads): the first is the classifier's
    dims = [_dim(out, i) for i in range(len(out.type.tensor_type.shape.dim))]
    if not (len(dims) == 2 or (len(dims) == 4 and dims[2:] == [1, 1])):
        problems.append(f"{path}: output {out.name!r} has shape {_shape(out)}, expected (N, classes)")
        return None
    if dims[1] is None:
        problems.append(f"{path}: output {out.name!r} has no fixed class count {_shape(out)}")
        return None
    return out


def _input_spec(model: onnx.ModelProto, image: onnx.ValueInfoProto, hints: Hints, path: Path,
                problems: list[str]) -> InputSpec | None:
    meta = _metadata(model)
    said: dict[str, str] = {}
    dims = [_dim(image, i) for i in range(4)]
    layout = _pick(said, "layout", hints.layout, meta.get("layout"), _layout_of(dims))
    if layout not in ("NCHW", "NHWC"):
        problems.append(f"{path}: input {image.name!r} {_shape(image)} has no 3-channel axis: "
                        "say --layout nchw or nhwc")
        return None
    hw_dims = dims[2:] if layout == "NCHW" else dims[1:3]
    fixed = (hw_dims[0], hw_dims[1]) if None not in hw_dims else None
    height, width = _pick(said, "size", hints.size, meta.get("size"), fixed, (224, 224))
    if fixed and (height, width) != fixed:
        problems.append(f"{path}: input {image.name!r} is {fixed[0]}x{fixed[1]}, not {height}x{width} (--size)")
    rgb = _pick(said, "channels", hints.rgb, meta.get("rgb"), None, True)
    mean = _pick(said, "mean", hints.mean, meta.get("mean"), None, IMAGENET_MEAN)
    std = _pick(said, "std", hints.std, meta.get("std"), None, IMAGENET_STD)
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        problems.append(f"{path}: mean {mean} and std {std} need 3 values each, std > 0")
        return None
    return InputSpec(layout, rgb, height, width, tuple(mean), tuple(std), image.type.tensor_type.elem_type, said)


def _pick(said: dict[str, str], key: str, flag: Any, meta: Any, shape: Any, default: Any = None) -> Any:
    for where, value in (("flag", flag), ("metadata", meta), ("shape", shape), ("default", default)):
        if value is not None:
            said[key] = where
            return value
    return None


def _layout_of(dims: list[int | None]) -> str | None:
    if dims[1] == 3:
        return "NCHW"
    return "NHWC" if dims[3] == 3 else None


def _metadata(model: onnx.ModelProto) -> dict[str, Any]:
    """What the model's metadata says of its input (keys and values case-insensitive)."""
    raw = {p.key.lower(): p.value for p in model.metadata_props}
    out: dict[str, Any] = {}
    pixel = raw.get("image.bitmappixelformat", "").lower()
    order = raw.get("channel_order") or raw.get("color_order") or raw.get("color_format") or ""
    if pixel.startswith(("rgb", "bgr")) or order.lower() in ("rgb", "bgr"):
        out["rgb"] = (pixel or order.lower()).startswith("rgb")
    if (rng := raw.get("image.nominalpixelrange", "").lower()) in _RANGES:
        out["mean"], out["std"] = _RANGES[rng]
    for key in ("mean", "std"):
        if key in raw and (values := _numbers(raw[key])):
            out[key] = tuple(v / 255 for v in values) if max(values) > 1 else tuple(values)
    size = _numbers(raw.get("input_size") or raw.get("image_size") or "")
    if size:
        out["size"] = (int(size[-2]), int(size[-1])) if len(size) >= 2 else (int(size[0]), int(size[0]))
    if raw.get("layout", "").upper() in ("NCHW", "NHWC"):
        out["layout"] = raw["layout"].upper()
    return out


def _numbers(text: str) -> list[float]:
    """`[0.5, 0.5, 0.5]`, `0.5,0.5,0.5` or `224` -> floats; [] when it is none of these."""
    try:
        value = json.loads(text) if text.strip().startswith("[") else [float(x) for x in text.split(",") if x.strip()]
        return [float(v) for v in (value if isinstance(value, list) else [value])]
    except (ValueError, TypeError):
        return []


def _runnable(model: onnx.ModelProto, path: Path, problems: list[str]) -> onnx.ModelProto | None:
    """An opset this onnxruntime runs, at least MIN_OPSET (older ones converted by onnx)."""
    import onnxruntime as ort

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors derive from Exception only
        why = one_line(exc)
        if "opset" in why.lower():
            problems.append(f"{path}: opset {opset} is not one onnxruntime {ort.__version__} runs: "
                            "export it with an older opset (17 is safe)")
        else:
            problems.append(f"{path}: onnxruntime cannot load it ({why[:200]})")
        return None
    if opset >= MIN_OPSET:
        return model
    try:
        from onnx import version_converter

        return version_converter.convert_version(model, MIN_OPSET)
    except Exception as exc:
        problems.append(f"{path}: opset {opset} does not convert to {MIN_OPSET} ({one_line(exc)[:160]}): "
                        f"export it with opset {MIN_OPSET} or newer")
        return None


def _is_probs(model: onnx.ModelProto, output: str, said: str) -> bool:
    if said != "auto":
        return said == "probs"
    return any(n.op_type == "Softmax" and output in n.output for n in model.graph.node)


def _dim(value: onnx.ValueInfoProto, i: int) -> int | None:
    d = value.type.tensor_type.shape.dim[i]
    return d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None


def _shape(value: onnx.ValueInfoProto) -> str:
    dims = [str(_dim(value, i) or "?") for i in range(len(value.type.tensor_type.shape.dim))]
    return "(" + ", ".join(dims) + ")"

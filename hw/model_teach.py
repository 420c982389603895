"""`vidpipe model teach`: a new last layer for the user's classes on the bundled model's features.

    examples (class -> frames as input-contract tensors, grouped by the file they came from)
      -> the bundled int8 model cut before its FC layer: 1280 features per frame (Backbone)
      -> scikit-learn LogisticRegression, checked by cross-validation grouped by file (evaluate)
      -> the backbone + Gemm + Softmax (+ `unknown`), stored as a cached model (teach)

Why logistic regression (scikit-learn's, lbfgs): the new layer has exactly the form of the one it
replaces (a linear layer and a softmax), so it folds into the graph without approximation, the
standardisation included; the problem is convex, so a run gives the same layer every time with no
learning rate or epochs to tune; its probabilities are calibrated well enough for a score
threshold (`unknown`) and for the smoothing that averages them. A maintained solver, not a
hand-made gradient loop. The training set is the examples plus their mirror images.

Held out: each file (an image, or every frame of a video) is tested by a model that did not see
it, in k folds (k = 4, or fewer when a class has fewer files); frames of one video never sit on
both sides, which would only measure how alike neighbouring frames are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from vidpipe.hw.model_build import INPUT_NAME, OUTPUT_PROBS, GraphBuilder
from vidpipe.hw.model_cache import ModelInfo, check_free, now, staging_dir, store
from vidpipe.hw.model_check import one_line_each
from vidpipe.hw.model_import import PREFIX, add_tail, label_metadata
from vidpipe.hw.paths import default_model_path
from vidpipe.pipeline.errors import BackendError, ConfigError

OTHER = "other"  # the optional class of examples of none of the classes: labeled `unknown`
FOLDS = 4


@dataclass(frozen=True)
class Example:
    """One file of one class: its frames as input-contract tensors (n, 224, 224, 3) int8."""

    label: str
    source: str
    tensors: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """Cross-validated predictions of the held-out frames."""

    classes: list[str]
    truth: np.ndarray  # class index per held-out frame
    predicted: np.ndarray
    top_score: np.ndarray  # the winning probability (before `unknown`)
    folds: int
    files: dict[str, int]  # class -> files

    def confusion(self) -> np.ndarray:
        from sklearn.metrics import confusion_matrix

        return confusion_matrix(self.truth, self.predicted, labels=list(range(len(self.classes))))

    @property
    def accuracy(self) -> float:
        return float((self.truth == self.predicted).mean()) if len(self.truth) else 0.0


class Backbone:
    """The bundled int8 model up to the input of its FC layer (onnx.utils.Extractor)."""

    def __init__(self, path: Path | None = None) -> None:
        from vidpipe.hw.cpu import open_session

        self.path = path or default_model_path()
        if not self.path.is_file():
            raise BackendError(f"the bundled model is not built ({self.path}): run `vidpipe model` first")
        full = onnx.load(str(self.path))
        fc = [n for n in full.graph.node if n.op_type == "Gemm"][-1]
        self.features = fc.input[0]
        inferred = onnx.shape_inference.infer_shapes(full)  # the Extractor finds tensors by their value_info
        self.model = onnx.utils.Extractor(inferred).extract_model([INPUT_NAME], [self.features])
        self._session = open_session(self.model.SerializeToString())

    def __call__(self, tensors: np.ndarray) -> np.ndarray:
        """(n, 224, 224, 3) int8 -> (n, 1280) float32."""
        out = [self._session.run([self.features], {INPUT_NAME: b})[0]
               for b in np.array_split(tensors, max(1, len(tensors) // 32))]
        return np.concatenate(out).reshape(len(tensors), -1)


def _classifier() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced"))


def _with_mirrors(x: np.ndarray, mirrored: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([x, mirrored]), np.concatenate([y, y])


def evaluate(classes: list[str], x: np.ndarray, mirrored: np.ndarray, y: np.ndarray,
             groups: np.ndarray) -> Evaluation:
    """Each file's frames predicted by a model trained on the other folds' files (and mirrors)."""
    from sklearn.model_selection import StratifiedGroupKFold

    files = {c: len(set(groups[y == i].tolist())) for i, c in enumerate(classes)}
    folds = min(FOLDS, min(files.values()))
    predicted, top = np.empty(len(y), np.int64), np.empty(len(y), np.float32)
    for train, test in StratifiedGroupKFold(folds, shuffle=True, random_state=0).split(x, y, groups):
        clf = _classifier().fit(*_with_mirrors(x[train], mirrored[train], y[train]))
        probs = clf.predict_proba(x[test])
        predicted[test], top[test] = clf.classes_[probs.argmax(1)], probs.max(1)
    return Evaluation(classes, y, predicted, top, folds, files)


def fit_layer(x: np.ndarray, mirrored: np.ndarray, y: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The layer trained on every example: (classes, features) weights and biases of the logits,
    the standardisation folded in (w / scale, b - w . mean / scale)."""
    clf = _classifier().fit(*_with_mirrors(x, mirrored, y))
    scaler, lr = clf[0], clf[-1]
    w, b = lr.coef_ / scaler.scale_, lr.intercept_ - (lr.coef_ / scaler.scale_) @ scaler.mean_
    if classes == 2:  # binary: p(1) = sigmoid(z), the softmax of the logits (0, z)
        w, b = np.vstack([np.zeros_like(w), w]), np.concatenate([[0.0], b])
    return w.astype(np.float32), b.astype(np.float32)


def head_model(backbone: Backbone, w: np.ndarray, b: np.ndarray, labels: list[str], unknown_below: float,
               other: int | None) -> tuple[onnx.ModelProto, list[str]]:
    """The backbone with the new layer, a softmax and the `unknown` tail; its class names."""
    g = GraphBuilder({})
    logits = g.op("Gemm", [backbone.features, g.const(f"{PREFIX}fc.w", w), g.const(f"{PREFIX}fc.b", b)],
                  f"{PREFIX}fc", transB=1)
    probs = g.op("Softmax", [logits], f"{PREFIX}post.softmax", axis=1)
    names = add_tail(g, probs, labels, unknown_below, other)
    base = backbone.model
    graph = helper.make_graph(
        [*base.graph.node, *g.nodes], "vidpipe_taught", list(base.graph.input),
        [helper.make_tensor_value_info(OUTPUT_PROBS, TensorProto.FLOAT, ["N", len(names)])],
        [*base.graph.initializer, *g.inits])
    model = helper.make_model(graph, opset_imports=list(base.opset_import), producer_name="vidpipe")
    model.ir_version = base.ir_version
    return model, names


def check_examples(examples: list[Example]) -> list[str]:
    """The classes, sorted (`other` last); ConfigError when there is not enough to learn from."""
    files: dict[str, int] = {}
    for e in examples:
        files[e.label] = files.get(e.label, 0) + 1
    named = sorted(c for c in files if c != OTHER)
    problems = [f"class {c!r}: {n} example file; at least 2 (10 or more is better)" for c, n in files.items() if n < 2]
    if len(named) < (1 if OTHER in files else 2):
        problems.append(f"{len(named)} class(es): teach needs two or more (or one and `{OTHER}`)")
    if problems:
        raise one_line_each(problems)
    return named + ([OTHER] if OTHER in files else [])


def teach(examples: list[Example], name: str, source: str, unknown_below: float = 0.5, force: bool = False,
          say: Callable[[str], None] = print, backbone: Backbone | None = None) -> tuple[ModelInfo, Evaluation]:
    """Learns, evaluates and stores NAME; returns what was stored and the held-out evaluation."""
    from vidpipe.hw.model_teach_report import confusion_png, report

    t0 = time.perf_counter()
    check_free(name, force)
    if not 0 <= unknown_below < 1:
        raise ConfigError(f"--unknown-below {unknown_below}: must be 0 (off) .. below 1")
    classes = check_examples(examples)
    backbone = backbone or Backbone()
    tensors = np.concatenate([e.tensors for e in examples])
    x, mirrored = backbone(tensors), backbone(np.ascontiguousarray(tensors[:, :, ::-1]))
    y = np.concatenate([np.full(len(e.tensors), classes.index(e.label)) for e in examples])
    groups = np.concatenate([np.full(len(e.tensors), i) for i, e in enumerate(examples)])
    evaluation = evaluate(classes, x, mirrored, y, groups)
    for line in report(evaluation, unknown_below):
        say(line)
    w, b = fit_layer(x, mirrored, y, len(classes))
    other = classes.index(OTHER) if OTHER in classes else None
    model, labels = head_model(backbone, w, b, classes, unknown_below, other)
    label_metadata(model, labels, f"the bundled model's features, {len(tensors)} frames of {len(examples)} files")
    with staging_dir(name) as staging:
        onnx.save(model, staging / "model.onnx")
        png = confusion_png(evaluation, staging / "confusion.png")
        per_class = {c: round(float((evaluation.predicted[evaluation.truth == i] == i).mean()), 4)
                     for i, c in enumerate(classes)}
        info = ModelInfo(name, tuple(labels), "taught", source, "int8", "EfficientNet-Lite0 features 224x224",
                         created=now(), unknown_below=unknown_below,
                         extra={"accuracy": round(evaluation.accuracy, 4), "per_class": per_class,
                                "folds": evaluation.folds, "frames": len(tensors),
                                "teach_s": round(time.perf_counter() - t0, 2)})
        return store(name, staging / "model.onnx", info, (png,)), evaluation

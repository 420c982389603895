"""The `cpu` backend: a real ImageNet-1k classifier (int8 EfficientNet-Lite0) on onnxruntime, or a
model of the user's own classes (`backend.cpu.model: NAME`, made by `vidpipe model import/teach`).

The bundled model is built once by `vidpipe model` (`make model` runs it) into the user cache;
every model it runs takes the accelerator tensor as is (int8 NHWC bytes of uint8 BGR), so
preprocessing is shared with every other backend. A user's model names its classes in its own
metadata (hw.model_cache), and may have fewer than five. Inference runs on one worker thread:
onnxruntime releases the GIL, so the infer stage fills the next buffer set while the current batch
computes.

onnxruntime shares the machine with the decoders and preprocess workers: its intra-op threads
(`backend.cpu.threads`, 0 = one per core) do not spin while they wait for work (spinning keeps
a core busy between batches: measured on 2 cores, 4.69 ms of CPU per image spinning vs 4.33 ms
not, at the same rate), and there is one inter-op thread (the model is a chain of operators).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from vidpipe.hw import imagenet
from vidpipe.hw.base import INPUT_DTYPE, INPUT_SHAPE, TOP_K, BackendSpec, BatchOutput, DeviceInfo
from vidpipe.hw.model_cache import labels_from_metadata, resolve_model
from vidpipe.hw.paths import default_model_path
from vidpipe.hw.settings import BackendSettings
from vidpipe.pipeline.errors import BackendError, one_line
from vidpipe.pipeline.machine import usable_cores

BUILD_HINT = "run `vidpipe model`"


def describe_model_state(path: Path | None = None) -> str:
    """One line for `vidpipe devices`: whether the cpu model is built, where, how big."""
    path = path or default_model_path()
    if not path.is_file():
        return f"missing: {BUILD_HINT}"
    return f"built: {path} ({path.stat().st_size / 1e6:.1f} MB)"


def int8_saturates() -> bool:
    """True on an x86-64 CPU without VNNI, where onnxruntime's fast int8 kernel (u8 x s8 with
    vpmaddubsw) adds pairs of products in saturating int16: this model's 1x1 convolutions overflow
    it (pair sums up to ~55,000 measured), which changed the top-1 of 3 of 12 photos on an AVX2 EPYC.
    onnxruntime documents `session.x64quantprecision` as the remedy (exact, ~30% slower there)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return True  # cannot tell: take the exact path (slower only on VNNI CPUs)
    return not any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def open_session(model: str | bytes, threads: int = 0) -> Any:
    """An onnxruntime session (a path or the model's bytes) as vidpipe runs its int8 models: see
    the module docstring and int8_saturates."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads > 0 else usable_cores()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if int8_saturates():
        options.add_session_config_entry("session.x64quantprecision", "1")
    options.log_severity_level = 3  # onnxruntime's own warnings are not actionable for users
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class CpuModel:
    """An onnxruntime session of the built model; `classify` gives top-5 ids and probabilities."""

    def __init__(self, path: Path | None = None, threads: int = 0) -> None:
        self.path = path or default_model_path()
        if not self.path.is_file():
            raise BackendError(f"cpu model not found at {self.path}: {BUILD_HINT}")
        try:
            self._session = open_session(str(self.path), threads)
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            raise BackendError(
                f"cpu model {self.path} is malformed ({one_line(exc)}); rebuild it: python -m hw.model_build --force"
            ) from exc
        self._output = self._check_signature()
        try:
            self.labels = labels_from_metadata(self._session.get_modelmeta().custom_metadata_map)
        except ValueError as exc:  # json's
            raise BackendError(f"cpu model {self.path}: its class names are malformed ({one_line(exc)})") from exc

    def _check_signature(self) -> str:
        inputs, outputs = self._session.get_inputs(), {o.name for o in self._session.get_outputs()}
        ok = len(inputs) == 1 and inputs[0].name == "input" and inputs[0].type == "tensor(int8)"
        ok = ok and list(inputs[0].shape[1:]) == list(INPUT_SHAPE) and bool(outputs & {"probs", "logits"})
        if not ok:
            raise BackendError(
                f"{self.path} is not a vidpipe cpu model (int8 'input' (N,224,224,3) -> 'probs'): "
                "`vidpipe model import` makes one of an exported classifier; "
                "`vidpipe model --force` rebuilds the bundled one"
            )
        return "probs" if "probs" in outputs else "logits"

    def classify(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 224, 224, 3) int8 -> top-5 class ids uint32 (n, k) and softmax scores float32 (n, k),
        best first; k = 5, or the class count of a model with fewer."""
        if batch.dtype != INPUT_DTYPE or batch.shape[1:] != INPUT_SHAPE:
            raise ValueError(f"expected int8 (n, 224, 224, 3), got {batch.dtype} {batch.shape}")
        if batch.shape[0] == 0:
            return np.empty((0, TOP_K), np.uint32), np.empty((0, TOP_K), np.float32)
        probs = self.probs(batch)
        k = min(TOP_K, probs.shape[1])
        top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
        scores = np.take_along_axis(probs, top, axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")
        top, scores = np.take_along_axis(top, order, axis=1), np.take_along_axis(scores, order, axis=1)
        return top.astype(np.uint32), scores.astype(np.float32)


    def probs(self, batch: np.ndarray) -> np.ndarray:
        """(n, 224, 224, 3) int8 -> every class's score (n, classes) float32."""
        try:
            (out,) = self._session.run([self._output], {"input": np.ascontiguousarray(batch)})
        except Exception as exc:
            raise BackendError(f"cpu inference failed: {one_line(exc)}") from exc
        return out if self._output == "probs" else _softmax(out)


class CpuBackend:
    """vidpipe.hw.base.Accelerator on CpuModel: host buffer sets, one background inference at a time."""

    name = "cpu"
    labels_meaningful = True

    def __init__(self, settings: BackendSettings) -> None:
        self._settings = settings
        self.max_batch = settings.batch
        self.buffer_sets = settings.buffer_sets
        self._model: CpuModel | None = None
        self._buffers: list[np.ndarray] = []
        self._pending: dict[int, Future[BatchOutput]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def open(self) -> None:
        if self.max_batch < 1 or self.buffer_sets < 2:
            raise BackendError(
                f"cpu backend needs max_batch >= 1 and buffer_sets >= 2, got {self.max_batch} and {self.buffer_sets}"
            )
        self._model = CpuModel(cpu_model_path(self._settings), self._settings.cpu.threads or 0)
        self._buffers = [np.empty((self.max_batch, *INPUT_SHAPE), INPUT_DTYPE) for _ in range(self.buffer_sets)]
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vidpipe-cpu")

    def input_buffer(self, buffer_set: int) -> np.ndarray:
        self._require_open()
        return self._buffers[buffer_set]

    def start(self, buffer_set: int, n: int) -> None:
        pool = self._require_open()
        if buffer_set in self._pending:
            raise BackendError(f"buffer set {buffer_set} started twice without wait()")
        if not 0 <= buffer_set < self.buffer_sets or not 0 <= n <= self.max_batch:
            raise ValueError(f"start({buffer_set}, {n}) outside {self.buffer_sets} sets of {self.max_batch}")
        self._pending[buffer_set] = pool.submit(self._run, buffer_set, n)

    def _run(self, buffer_set: int, n: int) -> BatchOutput:
        assert self._model is not None
        t0 = time.perf_counter()
        top5, scores = self._model.classify(self._buffers[buffer_set][:n])
        # host memory is the device memory here: nothing to upload or download
        return BatchOutput(top5, scores, upload_s=0.0, compute_s=time.perf_counter() - t0, download_s=0.0)

    def wait(self, buffer_set: int) -> BatchOutput:
        self._require_open()
        future = self._pending.pop(buffer_set, None)
        if future is None:
            raise BackendError(f"wait({buffer_set}) without a started batch")
        return future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
        self._pending.clear()
        self._buffers = []
        self._model = None

    def class_names(self) -> list[str]:
        """The model's own class names, else (the bundled model) ImageNet-1k's."""
        labels = self._model.labels if self._model is not None else None
        return list(labels) if labels is not None else imagenet.class_names()

    def _require_open(self) -> ThreadPoolExecutor:
        if self._pool is None:
            raise BackendError("cpu backend used before open() or after close()")
        return self._pool

    def __enter__(self) -> CpuBackend:
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def cpu_model_path(settings: BackendSettings) -> Path:
    """The model the cpu backend loads: `backend.cpu.model`
    is a name in the model cache, a path, or empty (the bundled model)."""
    return resolve_model(settings.cpu.model)


def _cpu_devices(settings: BackendSettings) -> list[DeviceInfo]:
    return [DeviceInfo("cpu", "onnxruntime", describe_model_state(cpu_model_path(settings)))]


BACKEND = BackendSpec(
    name="cpu",
    summary="a real ImageNet-1k classifier (EfficientNet-Lite0, int8) on onnxruntime: the default",
    create=lambda settings, index: CpuBackend(settings),
    model=cpu_model_path,
    devices=_cpu_devices,
)

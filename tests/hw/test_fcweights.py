"""FC weights: the reference csv (one line, trailing separator) and .npy; every malformed file
is a one-line BackendError naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidpipe.hw.base import FC_SHAPE
from vidpipe.hw.fcweights import FC_SIZE, load_fc_weights
from vidpipe.pipeline.errors import BackendError


@pytest.fixture(scope="module")
def weights() -> np.ndarray:
    return np.random.default_rng(3).integers(-128, 128, FC_SHAPE, dtype=np.int8)


def _write_csv(path: Path, values: list[str], trailing: str = ",\n") -> Path:
    path.write_text(",".join(values) + trailing)
    return path


def _fields(weights: np.ndarray) -> list[str]:
    return [str(v) for v in weights.ravel().tolist()]


def _error(path: Path) -> str:
    with pytest.raises(BackendError) as info:
        load_fc_weights(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_reference_csv_drops_the_spurious_trailing_element(tmp_path: Path, weights: np.ndarray) -> None:
    # np.genfromtxt(..., dtype=np.int8) on this file gives 2048001 values, the last one spurious
    loaded = load_fc_weights(_write_csv(tmp_path / "fcweights.csv", _fields(weights)))
    assert loaded.dtype == np.int8 and loaded.shape == FC_SHAPE and loaded.flags.c_contiguous
    assert np.array_equal(loaded, weights)


def test_csv_without_the_extra_element_and_one_value_per_line(tmp_path: Path, weights: np.ndarray) -> None:
    assert np.array_equal(load_fc_weights(_write_csv(tmp_path / "a.csv", _fields(weights), "\n")), weights)
    lines = tmp_path / "b.csv"
    lines.write_text("\n".join(_fields(weights)) + "\n\n")
    assert np.array_equal(load_fc_weights(lines), weights)


def test_npy_int8_and_in_range_wider_integers(tmp_path: Path, weights: np.ndarray) -> None:
    np.save(tmp_path / "w.npy", weights)
    assert np.array_equal(load_fc_weights(tmp_path / "w.npy"), weights)
    np.save(tmp_path / "w16.npy", weights.astype(np.int16))
    loaded = load_fc_weights(tmp_path / "w16.npy")
    assert loaded.dtype == np.int8 and np.array_equal(loaded, weights)


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in _error(tmp_path / "fcweights.csv")


def test_csv_out_of_range_value_is_an_error_not_wrapped(tmp_path: Path, weights: np.ndarray) -> None:
    fields = _fields(weights)
    fields[12345] = "200"  # genfromtxt would silently store -56
    message = _error(_write_csv(tmp_path / "big.csv", fields))
    assert "value 12345 is 200" in message and "-128..127" in message


def test_csv_wrong_count_and_garbage(tmp_path: Path, weights: np.ndarray) -> None:
    fields = _fields(weights)
    assert f"expected {FC_SIZE}" in _error(_write_csv(tmp_path / "short.csv", fields[:-10]))
    fields[7] = "x1"
    assert "value 7 is 'x1'" in _error(_write_csv(tmp_path / "bad.csv", fields))
    fields[7] = ""
    assert "value 7 is ''" in _error(_write_csv(tmp_path / "hole.csv", fields))


def test_npy_wrong_shape_dtype_range_and_corrupt(tmp_path: Path, weights: np.ndarray) -> None:
    np.save(tmp_path / "shape.npy", weights.reshape(2048, 1000))
    assert "shape (2048, 1000)" in _error(tmp_path / "shape.npy")
    np.save(tmp_path / "float.npy", weights.astype(np.float32))
    assert "dtype float32" in _error(tmp_path / "float.npy")
    wide = weights.astype(np.int32)
    wide[3, 4] = -129
    np.save(tmp_path / "range.npy", wide)
    assert "is -129, outside int8" in _error(tmp_path / "range.npy")
    (tmp_path / "corrupt.npy").write_bytes(b"not numpy at all")
    assert "not a valid .npy" in _error(tmp_path / "corrupt.npy")


def test_unknown_format(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"\0" * 16)
    assert "unknown format" in _error(tmp_path / "w.bin")

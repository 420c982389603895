"""The emulated card's stand-ins for the release files: its xclbin and FC weights.

The alveo backend falls back to these (in the user cache) when it emulates the card and the
configured files are the defaults and do not exist, so `alveo-emu` runs with no download.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from vidpipe.hw.base import FC_SHAPE
from vidpipe.hw.emulated.xclbin import build_xclbin


def _write_atomically(path: Path, data: bytes) -> Path:
    """Write `data` to `path` unless it is already there; a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_bytes() == data:
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def write_emulated_xclbin(path: Path) -> Path:
    """The emulated card's xclbin (the release's kernel and connectivity, no bitstream) at `path`."""
    return _write_atomically(path, build_xclbin())


def write_emulated_weights(path: Path) -> Path:
    """FC weights for the emulated card as .npy: random int8 of the release's shape (the emulated
    kernel checks their size and that they were synced, not their values)."""
    if path.is_file():
        return path
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).integers(-128, 128, FC_SHAPE, dtype=np.int8))
    return _write_atomically(path, buffer.getvalue())

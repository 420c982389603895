"""ImageNet-1k class names in the standard index order (0 = tench ... 999 = toilet tissue).

`imagenet_classes.txt` is pytorch/hub's list (one short name per line), shipped as package data.
`load_label_file` reads a user's own list instead (`backend.alveo.labels`: the release's
labels.pkl or a text file).
"""

from __future__ import annotations

import pickle
from functools import cache
from pathlib import Path
from typing import Any

from vidpipe.hw.base import NUM_CLASSES
from vidpipe.pipeline.errors import BackendError, one_line

_CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")


@cache
def _names() -> tuple[str, ...]:
    names = tuple(line.strip() for line in _CLASSES_FILE.read_text(encoding="utf-8").splitlines() if line.strip())
    if len(names) != NUM_CLASSES:  # a truncated install would silently shift every label
        raise RuntimeError(f"{_CLASSES_FILE} has {len(names)} class names, expected {NUM_CLASSES}")
    return names


def class_names() -> list[str]:
    """The 1000 names; a fresh list each call (the cached tuple stays immutable)."""
    return list(_names())


class _SafeUnpickler(pickle.Unpickler):
    """Plain lists/dicts/strings only: a label file must not run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"label pickle refers to {module}.{name}")


def load_label_file(path: Path) -> list[str]:
    """Class names 0..K-1 (K <= 1000: a head of fewer classes, see hw.alveo_head) from the reference
    labels.pkl (list or {id: name}) or a text file, one per line."""
    if not path.is_file():
        raise BackendError(f"label file {path} (alveo.labels) not found")
    try:
        if path.suffix.lower() in (".pkl", ".pickle"):
            with path.open("rb") as f:
                raw = _SafeUnpickler(f).load()
            names = [raw[i] for i in range(len(raw))] if isinstance(raw, dict) else list(raw)
        else:
            names = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    except (OSError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as exc:
        raise BackendError(f"label file {path}: cannot read class names ({one_line(exc)})") from exc
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise BackendError(f"label file {path}: a class name is empty or not text")
    if not 1 <= len(names) <= NUM_CLASSES:
        raise BackendError(f"label file {path}: expected 1..{NUM_CLASSES} class names (the card's FC rows), "
                           f"found {len(names)}")
    return [n.strip() for n in names]

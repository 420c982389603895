"""ImageNet-1k class names in the standard index order (0 = tench ... 999 = toilet tissue).

`imagenet_classes.txt` is pytorch/hub's list (one short name per line), shipped as package data.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

NUM_CLASSES = 1000
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

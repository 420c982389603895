"""Where vidpipe keeps what it builds (the cpu model): the user's cache, never the source tree."""

from __future__ import annotations

import os
from pathlib import Path

MODEL_FILENAME = "efficientnet_lite0_int8.onnx"


def cache_dir() -> Path:
    """$VIDPIPE_CACHE, else $XDG_CACHE_HOME/vidpipe, else ~/.cache/vidpipe (not created here)."""
    explicit = os.environ.get("VIDPIPE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "vidpipe"


def default_model_path() -> Path:
    """The int8 EfficientNet-Lite0 that `python -m hw.model_build` writes and the cpu backend loads."""
    return cache_dir() / MODEL_FILENAME

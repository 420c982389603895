"""A file's content fingerprint, as the manifest and the model cache record it: `sha256:HEX`."""

from __future__ import annotations

import hashlib
from pathlib import Path


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()

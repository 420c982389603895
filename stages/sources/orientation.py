"""Mirrored display matrices: frames shown as the container says when OpenCV cannot.

OpenCV turns frames upright from the display matrix's angle alone (stages.sources.files.upright),
which is right for the four rotations but turns a mirrored matrix (a selfie camera's, an edited
clip's) into a rotation. For those, vidpipe reads the matrix itself (PyAV: the first frame's
side data, FFmpeg's AV_FRAME_DATA_DISPLAYMATRIX) and applies it with numpy, exactly as FFmpeg
defines it: a pixel at (p, q) of the stored frame is shown at (a p + c q, b p + d q).

    orient = mirrored_orientation(path)      # (quarter turns, flip) or None (OpenCV's own is right)

The probe asks only when OpenCV reports an angle (reading the matrix costs a PyAV open and one
decoded frame): a top-bottom mirror alone, whose angle is 0, is shown as stored.
    shown = apply(orient, stored)            # a view: np.rot90(np.fliplr(stored) if flip else stored, turns)
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

Orientation = tuple[int, bool]  # np.rot90 quarter turns after an optional np.fliplr


def apply(orient: Orientation, image: np.ndarray) -> np.ndarray:
    turns, flip = orient
    return np.rot90(np.fliplr(image) if flip else image, turns)


def mirrored_orientation(path: str) -> Orientation | None:
    """The numpy orientation of a mirrored display matrix, or None (none, or a plain rotation)."""
    matrix = display_matrix(path)
    if matrix is None:
        return None
    a, b, c, d = matrix
    if a * d - b * c >= 0:
        return None  # a rotation (or none): OpenCV's own turning is right
    return orientation_of(a, b, c, d)


def display_matrix(path: str) -> tuple[int, int, int, int] | None:
    """(a, b, c, d) of the first video frame's display matrix, rounded to -1, 0, 1; None if it has
    none, cannot be read, or is not a multiple of a quarter turn."""
    import av

    try:
        with av.open(path) as container:
            frame: Any = next(container.decode(video=0))
            data = next((bytes(s) for s in frame.side_data if "DISPLAYMATRIX" in str(s.type)), None)
    except (av.FFmpegError, OSError, StopIteration, IndexError):
        return None
    if data is None or len(data) < 36:
        return None
    m = struct.unpack("<9i", data[:36])
    values = [m[0] / 65536, m[1] / 65536, m[3] / 65536, m[4] / 65536]
    a, b, c, d = (round(v) for v in values)
    if any(abs(v - r) > 0.01 for v, r in zip(values, (a, b, c, d), strict=True)):
        return None
    return a, b, c, d


def orientation_of(a: int, b: int, c: int, d: int) -> Orientation:
    """The turns and flip that move pixel (p, q) to (a p + c q, b p + d q), found on a small
    probe image (the eight combinations of quarter turns and a mirror)."""
    probe = np.arange(15).reshape(3, 5)  # [q, p]
    moved = {(a * p + c * q, b * p + d * q): probe[q, p] for q in range(3) for p in range(5)}
    p0, q0 = min(x for x, _ in moved), min(y for _, y in moved)
    want = np.zeros((max(y for _, y in moved) - q0 + 1, max(x for x, _ in moved) - p0 + 1), int)
    for (x, y), value in moved.items():
        want[y - q0, x - p0] = value
    for turns in range(4):
        for flip in (False, True):
            got = apply((turns, flip), probe)
            if got.shape == want.shape and (got == want).all():
                return turns, flip
    raise ValueError(f"display matrix {(a, b, c, d)} is not a quarter turn or a mirror")

"""The label overlay: a dark, semi-transparent box in the top-left corner with the top labels.

    [stream label]        (yellow, optional)
    tiger cat 83%         (white, top-1 first)
    tabby 9%
    Egyptian cat 4%
    [extra]               (grey, optional: latency, fps...)

The font scales with the frame height so the text reads the same at 240p and at 4K. Only the
box region is touched (darkened in place, then text drawn), which keeps a 1080p frame well
under a millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_HEIGHT_SHARE = 0.028  # cap height as a share of the frame height
MIN_SCALE = 0.4  # below this Hershey text is no longer legible
BOX_DIM = 0.35  # box pixels keep 35% of their brightness: white text stays readable on any image

WHITE = (255, 255, 255)
YELLOW = (0, 215, 255)  # BGR
GREY = (200, 200, 200)

Box = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True)
class _Layout:
    box: Box
    lines: tuple[tuple[str, tuple[int, int, int]], ...]
    scale: float
    thickness: int
    line_h: int
    pad: int
    baseline: int


def label_lines(names: Sequence[str], scores: Sequence[float] | None, top: int = 3) -> list[str]:
    """ "tiger cat 83%" lines; raw scores that are not probabilities are shown as numbers."""
    lines = []
    for i, name in enumerate(names[:top]):
        if scores is None or i >= len(scores):
            lines.append(name)
        elif 0.0 <= scores[i] <= 1.0:
            lines.append(f"{name} {scores[i]:.0%}")
        else:
            lines.append(f"{name} {scores[i]:.2f}")
    return lines


def _layout(shape: tuple[int, ...], names: Sequence[str], scores: Sequence[float] | None,
            stream_label: str | None, extra: str | None, top: int) -> _Layout:
    height, width = shape[:2]
    lines: list[tuple[str, tuple[int, int, int]]] = []
    if stream_label:
        lines.append((stream_label, YELLOW))
    lines += [(text, WHITE) for text in label_lines(names, scores, top)]
    if extra:
        lines.append((extra, GREY))
    scale = max(MIN_SCALE, height * TEXT_HEIGHT_SHARE / 22.0)  # Hershey simplex is ~22 px tall at scale 1
    thickness = max(1, round(scale * 1.6))
    widest = max((cv2.getTextSize(t, FONT, scale, thickness)[0][0] for t, _ in lines), default=0)
    pad = max(2, round(6 * scale))
    if widest + 4 * pad > width and widest > 0:  # long names on a narrow frame: shrink to fit
        scale = max(0.25, scale * (width - 4 * pad) / widest)
        thickness = max(1, round(scale * 1.6))
        widest = max(cv2.getTextSize(t, FONT, scale, thickness)[0][0] for t, _ in lines)
    (_, text_h), baseline = cv2.getTextSize("Ag", FONT, scale, thickness)
    line_h = text_h + baseline + pad // 2
    box_w = min(width - pad, widest + 2 * pad)
    box_h = min(height - pad, len(lines) * line_h + pad)
    box = (pad, pad, max(0, box_w), max(0, box_h)) if lines else (0, 0, 0, 0)
    return _Layout(box, tuple(lines), scale, thickness, line_h, pad, baseline)


def label_box(shape: tuple[int, ...], names: Sequence[str], scores: Sequence[float] | None, *,
              stream_label: str | None = None, extra: str | None = None, top: int = 3) -> Box:
    """The (x, y, w, h) region that draw_labels would modify on a frame of this shape."""
    return _layout(shape, names, scores, stream_label, extra, top).box


def draw_labels(frame: np.ndarray, names: Sequence[str], scores: Sequence[float] | None, *,
                stream_label: str | None = None, extra: str | None = None, top: int = 3) -> None:
    """Draws the label box on `frame` (BGR uint8, modified in place). Nothing outside the box changes."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"draw_labels needs a BGR uint8 frame, got {frame.dtype} {frame.shape}")
    lay = _layout(frame.shape, names, scores, stream_label, extra, top)
    x, y, w, h = lay.box
    if w <= 0 or h <= 0:
        return
    roi = frame[y:y + h, x:x + w]
    cv2.convertScaleAbs(roi, dst=roi, alpha=BOX_DIM)  # in place on the view: only the box is blended
    # Text is drawn on the ROI, so cv2 clips it to the box even when the frame is tiny.
    for i, (text, color) in enumerate(lay.lines):
        origin = (lay.pad, (i + 1) * lay.line_h - lay.baseline + lay.pad // 4)  # centres the block
        cv2.putText(roi, text, origin, FONT, lay.scale, color, lay.thickness, cv2.LINE_AA)

"""The label overlay: a dark, semi-transparent box in the top-left corner with the labels.

    [stream label]        (yellow, optional: live streams)
    TIGER CAT 81%         (the smoothed label, what the segments say: larger, bold, optional)
    tiger cat 83%         (the raw top-k of this very frame, top-1 first)
    tabby 9%
    Egyptian cat 4%
    0:01.24  [extra]      (grey, optional: the video time, latency, fps...)

The font scales with the frame height so the text reads the same at 240p and at 4K (never
below MIN_SCALE, where Hershey text stops being legible; long names shrink to fit a narrow
frame). Only the box region is touched (darkened in place, then text drawn), which keeps a
1080p frame well under a millisecond.
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
HEADLINE = 1.45  # the smoothed label's size relative to the other lines
SMALL = 0.85  # the time / extra line

WHITE = (255, 255, 255)
YELLOW = (0, 215, 255)  # BGR
GREY = (200, 200, 200)

Box = tuple[int, int, int, int]  # x, y, width, height


Color = tuple[int, int, int]


@dataclass(frozen=True)
class _Line:
    text: str
    color: Color
    size: float  # relative to the base scale
    bold: bool = False


@dataclass(frozen=True)
class _Layout:
    box: Box
    lines: tuple[_Line, ...]
    scale: float
    pad: int

    def thickness(self, line: _Line) -> int:
        return max(1, round(self.scale * line.size * (2.4 if line.bold else 1.6)))

    def metrics(self, line: _Line) -> tuple[int, int]:
        """(height of the line's text, baseline) in pixels."""
        (_, h), base = cv2.getTextSize("Ag", FONT, self.scale * line.size, self.thickness(line))
        return h, base

    def line_height(self, line: _Line) -> int:
        h, base = self.metrics(line)
        return h + base + self.pad // 2


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


def video_time(seconds: float) -> str:
    """0:01.24 (m:ss.cc), 1:02:03.40 past an hour."""
    cs = max(0, round(seconds * 100))
    hours, cs = divmod(cs, 360_000)
    minutes, cs = divmod(cs, 6000)
    head = f"{hours}:{minutes:02d}" if hours else f"{minutes}"
    return f"{head}:{cs // 100:02d}.{cs % 100:02d}"


def _lines(names: Sequence[str], scores: Sequence[float] | None, stream_label: str | None, extra: str | None,
           top: int, smoothed: tuple[str, float | None] | None, time_s: float | None) -> list[_Line]:
    lines: list[_Line] = []
    if stream_label:
        lines.append(_Line(stream_label, YELLOW, 1.0))
    if smoothed is not None:
        name, score = smoothed
        text = label_lines((name,), None if score is None else (score,), 1)[0]
        lines.append(_Line(text, WHITE, HEADLINE, bold=True))
    raw_color = GREY if smoothed is not None else WHITE  # the headline stands out, the raw lines support it
    lines += [_Line(text, raw_color, 1.0) for text in label_lines(names, scores, top)]
    tail = " ".join(t for t in (None if time_s is None else video_time(time_s), extra) if t)
    if tail:
        lines.append(_Line(tail, GREY, SMALL if smoothed is not None or time_s is not None else 1.0))
    return lines


def _layout(shape: tuple[int, ...], lines: list[_Line]) -> _Layout:
    height, width = shape[:2]
    scale = max(MIN_SCALE, height * TEXT_HEIGHT_SHARE / 22.0)  # Hershey simplex is ~22 px tall at scale 1
    pad = max(2, round(6 * scale))
    lay = _Layout((0, 0, 0, 0), tuple(lines), scale, pad)
    widest = max((_width(lay, line) for line in lines), default=0)
    if widest + 4 * pad > width and widest > 0:  # long names on a narrow frame: shrink to fit
        lay = _Layout((0, 0, 0, 0), tuple(lines), max(0.25, scale * (width - 4 * pad) / widest), pad)
        widest = max(_width(lay, line) for line in lines)
    box_w = min(width - pad, widest + 2 * pad)
    box_h = min(height - pad, sum(lay.line_height(line) for line in lines) + pad)
    box = (pad, pad, max(0, box_w), max(0, box_h)) if lines else (0, 0, 0, 0)
    return _Layout(box, lay.lines, lay.scale, pad)


def _width(lay: _Layout, line: _Line) -> int:
    return int(cv2.getTextSize(line.text, FONT, lay.scale * line.size, lay.thickness(line))[0][0])


def label_box(shape: tuple[int, ...], names: Sequence[str], scores: Sequence[float] | None, *,
              stream_label: str | None = None, extra: str | None = None, top: int = 3,
              smoothed: tuple[str, float | None] | None = None, time_s: float | None = None) -> Box:
    """The (x, y, w, h) region that draw_labels would modify on a frame of this shape."""
    return _layout(shape, _lines(names, scores, stream_label, extra, top, smoothed, time_s)).box


def draw_labels(frame: np.ndarray, names: Sequence[str], scores: Sequence[float] | None, *,
                stream_label: str | None = None, extra: str | None = None, top: int = 3,
                smoothed: tuple[str, float | None] | None = None, time_s: float | None = None) -> None:
    """Draws the label box on `frame` (BGR uint8, modified in place). Nothing outside the box changes.
    `names`/`scores`: the frame's raw top-k; `smoothed`: (name, score) of the smoothed label, drawn
    as the headline; `time_s`: the video time, drawn on the last line."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"draw_labels needs a BGR uint8 frame, got {frame.dtype} {frame.shape}")
    lay = _layout(frame.shape, _lines(names, scores, stream_label, extra, top, smoothed, time_s))
    x, y, w, h = lay.box
    if w <= 0 or h <= 0:
        return
    roi = frame[y:y + h, x:x + w]
    cv2.convertScaleAbs(roi, dst=roi, alpha=BOX_DIM)  # in place on the view: only the box is blended
    # Text is drawn on the ROI, so cv2 clips it to the box even when the frame is tiny.
    top_y = lay.pad // 4
    for line in lay.lines:
        _, baseline = lay.metrics(line)
        top_y += lay.line_height(line)
        origin = (lay.pad, top_y - baseline - lay.pad // 4)
        cv2.putText(roi, line.text, origin, FONT, lay.scale * line.size, line.color, lay.thickness(line), cv2.LINE_AA)

"""What `vidpipe model teach` says of the held-out frames: a per-class accuracy table, the confusion
matrix as text, and the same matrix as a PNG (drawn with OpenCV: no plotting library at run time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidpipe.hw.model_teach import Evaluation


def report(ev: Evaluation, unknown_below: float) -> list[str]:
    """The lines printed after the cross-validation."""
    width = max(8, *(len(c) for c in ev.classes)) + 2
    lines = [f"held out: every file once, by a model that did not see it ({ev.folds}-fold, grouped by file); "
             f"accuracy {ev.accuracy:.1%} of {len(ev.truth)} frames",
             f"{'class':<{width}}{'files':>6}{'frames':>8}{'correct':>9}{'accuracy':>10}"]
    for i, c in enumerate(ev.classes):
        mine = ev.truth == i
        right = int((ev.predicted[mine] == i).sum())
        share = right / mine.sum() if mine.sum() else 0.0
        lines.append(f"{c:<{width}}{ev.files[c]:>6}{int(mine.sum()):>8}{right:>9}{share:>10.1%}")
    lines.append("confusion matrix (rows: true class, columns: predicted):")
    lines.append(" " * width + "".join(f"{c[:width - 2]:>{width}}" for c in ev.classes))
    for c, row in zip(ev.classes, ev.confusion(), strict=True):
        lines.append(f"{c:<{width}}" + "".join(f"{int(v):>{width}}" for v in row))
    if unknown_below > 0:
        below = int((ev.top_score < unknown_below).sum())
        lines.append(f"scores below {unknown_below:g} (labeled unknown): {below} of {len(ev.truth)} held-out frames")
    return lines


def confusion_png(ev: Evaluation, path: Path) -> Path:
    """The confusion matrix as a heat map, each row shaded by its share, counts written in."""
    import cv2

    matrix = ev.confusion()
    n, cell, margin = len(ev.classes), 72, 150
    img = np.full((margin + n * cell + 20, margin + n * cell + 20, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for r in range(n):
        total = max(1, int(matrix[r].sum()))
        for c in range(n):
            share = matrix[r, c] / total
            x0, y0 = margin + c * cell, margin + r * cell
            shade = int(255 - 200 * share)
            img[y0:y0 + cell, x0:x0 + cell] = (255, shade, shade)  # BGR: white -> blue
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (160, 160, 160), 1)
            text = str(int(matrix[r, c]))
            (tw, th), _ = cv2.getTextSize(text, font, 0.6, 1)
            color = (255, 255, 255) if share > 0.6 else (0, 0, 0)
            cv2.putText(img, text, (x0 + (cell - tw) // 2, y0 + (cell + th) // 2), font, 0.6, color, 1, cv2.LINE_AA)
        name = ev.classes[r][:14]
        cv2.putText(img, name, (6, margin + r * cell + cell // 2 + 5), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for c in range(n):  # column names, written upwards
        name = ev.classes[c][:14]
        (tw, th), _ = cv2.getTextSize(name, font, 0.5, 1)
        label = np.full((th + 8, tw + 4, 3), 255, np.uint8)
        cv2.putText(label, name, (2, th + 2), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        label = np.rot90(label)
        x0 = margin + c * cell + (cell - label.shape[1]) // 2
        img[margin - 8 - label.shape[0]:margin - 8, x0:x0 + label.shape[1]] = label
    cv2.putText(img, "predicted", (margin, 18), font, 0.5, (80, 80, 80), 1, cv2.LINE_AA)
    cv2.putText(img, "true", (6, margin - 10), font, 0.5, (80, 80, 80), 1, cv2.LINE_AA)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cannot write {path}")
    return path

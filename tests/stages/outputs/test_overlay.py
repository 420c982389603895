"""The label overlay: only the box changes, the text is there, and it scales with the frame."""

from __future__ import annotations

import numpy as np
import pytest

from vidpipe.stages.outputs.overlay import draw_labels, label_box, label_lines, video_time

NAMES = ("tiger cat", "tabby", "Egyptian cat", "lynx", "cougar")
SCORES = (0.83, 0.09, 0.04, 0.02, 0.01)


def grey(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 3), 128, np.uint8)


@pytest.mark.parametrize("size", [(160, 120), (641, 361), (1920, 1080), (3840, 2160)])
def test_only_the_box_changes_and_text_is_drawn(size: tuple[int, int]) -> None:
    frame = grey(*size)
    draw_labels(frame, NAMES, SCORES, stream_label="cam0", extra="12.0 ms")
    x, y, w, h = label_box(frame.shape, NAMES, SCORES, stream_label="cam0", extra="12.0 ms")
    assert w > 0 and h > 0 and x + w <= size[0] and y + h <= size[1]
    outside = np.ones(frame.shape[:2], bool)
    outside[y:y + h, x:x + w] = False
    assert (frame[outside] == 128).all()
    box = frame[y:y + h, x:x + w]
    dark = (box == 45).all(axis=2).mean()  # 128 * 0.35 rounded: the box background
    white = (box >= 220).all(axis=2).sum()
    assert dark > 0.5
    assert white > 0.005 * w * h  # white text strokes
    assert (box[..., 2] > 200).any() and (box[..., 0] < 100).any()  # the yellow stream label (BGR)


def test_font_scales_with_frame_height() -> None:
    heights = {}
    for height in (360, 720, 1080, 2160):
        _, _, _, h = label_box((height, height * 16 // 9, 3), NAMES, SCORES)
        heights[height] = h / height
    assert max(heights.values()) / min(heights.values()) < 1.3  # same share of the frame at any size


def test_lines_with_and_without_scores() -> None:
    assert label_lines(NAMES, SCORES) == ["tiger cat 83%", "tabby 9%", "Egyptian cat 4%"]
    assert label_lines(NAMES, None, top=2) == ["tiger cat", "tabby"]
    assert label_lines(("a",), (7.5,)) == ["a 7.50"]  # raw scores, not probabilities
    _, _, _, three = label_box((360, 640, 3), NAMES, SCORES)
    _, _, _, five = label_box((360, 640, 3), NAMES, SCORES, stream_label="cam", extra="x")
    assert five > three


def test_long_names_on_a_narrow_frame_fit_and_tiny_frames_do_not_crash() -> None:
    long = ("Chesapeake Bay retriever", "German short-haired pointer", "American Staffordshire terrier")
    frame = grey(200, 300)
    draw_labels(frame, long, (0.5, 0.3, 0.2))
    x, _, w, _ = label_box(frame.shape, long, (0.5, 0.3, 0.2))
    assert x + w <= 200
    for size in ((8, 6), (33, 17)):
        draw_labels(grey(*size), NAMES, SCORES, stream_label="cam0")
    draw_labels(grey(64, 48), (), None)  # nothing to draw: untouched


def test_rejects_non_bgr_frames() -> None:
    with pytest.raises(ValueError, match="BGR uint8"):
        draw_labels(np.zeros((10, 10), np.uint8), NAMES, SCORES)
    with pytest.raises(ValueError, match="BGR uint8"):
        draw_labels(np.zeros((10, 10, 3), np.float32), NAMES, SCORES)


def text_rows(frame: np.ndarray) -> int:
    """Height in pixels of the white text drawn on a black frame."""
    ys = np.where((frame > 200).all(axis=2).any(axis=1))[0]
    return int(ys.max() - ys.min() + 1) if len(ys) else 0


@pytest.mark.parametrize("height", [240, 360, 720, 1080, 2160])
def test_smoothed_headline_stands_out_and_reads_from_240p_to_4k(height: int) -> None:
    width = height * 16 // 9
    headline, raw = np.zeros((height, width, 3), np.uint8), np.zeros((height, width, 3), np.uint8)
    draw_labels(headline, (), None, smoothed=("espresso", 0.81))
    draw_labels(raw, ("espresso",), (0.8,), top=1)
    big, small = text_rows(headline), text_rows(raw)
    assert big >= 12 and small >= 8  # pixels: legible at 240p
    assert big >= 1.3 * small  # the smoothed label is the emphasized line
    if height >= 360:
        assert 0.05 <= big / height <= 0.065  # the same share of the picture at any size
    _, _, w, h = label_box((height, width, 3), NAMES, SCORES, smoothed=("tiger cat", 0.8), time_s=61.5)
    assert h <= height / 3 and w <= width / 3  # the picture stays visible


def test_the_time_line_and_the_headline_are_drawn() -> None:
    frame = grey(640, 360)
    plain = label_box(frame.shape, NAMES, SCORES)
    full = label_box(frame.shape, NAMES, SCORES, smoothed=("tiger cat", 0.8), time_s=3725.4)
    assert full[3] > plain[3] + 20  # two more lines
    draw_labels(frame, NAMES, SCORES, smoothed=("tiger cat", 0.8), time_s=1.25)
    other = grey(640, 360)
    draw_labels(other, NAMES, SCORES, smoothed=("tiger cat", 0.8), time_s=1.29)
    assert (frame != other).any()  # the time is on the picture
    assert video_time(1.25) == "0:01.25" and video_time(3725.4) == "1:02:05.40" and video_time(-1) == "0:00.00"

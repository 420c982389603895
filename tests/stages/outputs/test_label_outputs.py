"""LabelOutputs: every frame of the annotated video carries its own smoothed label (the one the
segments are built from), its own raw top-k and its own time, in order, with bounded memory."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vidpipe.stages.config import OutputSettings, PostprocessSettings
from vidpipe.stages.descriptors import FrameRef, LabelInfo, Result, StreamEnd, StreamStart
from vidpipe.stages.outputs.label import LabelOutputs
from vidpipe.stages.outputs.overlay import draw_labels
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import LabelSmoother

NAMES = tuple(f"class {i}" for i in range(10))
FRAMES, SWITCH, WINDOW = 40, 20, 9


def result(i: int) -> Result:
    top5 = (1, 2, 3, 4, 5) if i < SWITCH else (6, 7, 8, 9, 0)
    scores = (0.6 + 0.01 * (i % 5), 0.2, 0.1, 0.05, 0.05)
    return Result(FrameRef("s", i, 0, 120, 160, i / 25, 0.0), top5, scores, 0.0, 0.0, 0.0)


def reference(i: int, smoothed: tuple[str, float]) -> np.ndarray:
    frame = np.full((120, 160, 3), 128, np.uint8)
    label = FrameLabel.from_result(result(i), NAMES, 0.0)
    draw_labels(frame, label.names, label.scores, smoothed=smoothed, time_s=i / 25)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(int)


def test_each_frame_gets_its_own_smoothed_label_in_order(tmp_path: Path) -> None:
    out = OutputSettings(dir=str(tmp_path), jsonl=False, video_crf=0, video_preset="ultrafast")
    post = PostprocessSettings(smoothing_window=WINDOW, min_segment_s=0.0)
    outputs = LabelOutputs(StreamStart("s", "s.mp4", 160, 120, 25.0, FRAMES, False), LabelInfo("cpu", NAMES, True),
                           out, post)
    lag = outputs.smoother.lag
    for i in range(FRAMES):
        outputs.write(result(i), np.full((120, 160, 3), 128, np.uint8), 0.0)
        assert len(outputs.held) <= lag  # memory: at most `lag` frames held
    summary = outputs.finish(StreamEnd("s", FRAMES))
    assert summary.segments == 2
    smoother = LabelSmoother(WINDOW)
    labels = [x for i in range(FRAMES) for x in smoother.push(FrameLabel.from_result(result(i), NAMES, 0.0))]
    labels += smoother.flush()
    expected = [(x.name, x.score) for x in labels]
    assert expected[0][0] == "class 1" and expected[-1][0] == "class 6"
    with av.open(str(tmp_path / "s.mp4")) as container:
        decoded = [f.to_ndarray(format="gray").astype(int) for f in container.decode(video=0)]
    assert len(decoded) == FRAMES
    for i, frame in enumerate(decoded):
        right = np.abs(frame - reference(i, expected[i])).mean()
        assert right < 1.5, i
        late = expected[max(0, i - lag)]  # what an overlay drawn without the delay would show
        if f"{late[0]} {late[1]:.0%}" != f"{expected[i][0]} {expected[i][1]:.0%}":  # a different headline
            assert np.abs(frame - reference(i, late)).mean() > 2 * right, i
        if i + 1 < FRAMES:  # and not the next frame's picture (time, raw scores): in order
            assert np.abs(frame - reference(i + 1, expected[i + 1])).mean() > 2 * right, i


@pytest.mark.parametrize("window", [1, 2])
def test_no_delay_without_a_centred_window(tmp_path: Path, window: int) -> None:
    out = OutputSettings(dir=str(tmp_path), jsonl=False, segments=False, video_preset="ultrafast")
    outputs = LabelOutputs(StreamStart("s", "s.mp4", 160, 120, 25.0, 5, False), LabelInfo("cpu", NAMES, True), out,
                           PostprocessSettings(smoothing_window=window))
    for i in range(5):
        outputs.write(result(i), np.full((120, 160, 3), 128, np.uint8), 0.0)
        assert len(outputs.held) == outputs.smoother.lag
    outputs.finish(StreamEnd("s", 5))
    assert not outputs.held and (tmp_path / "s.mp4").exists() and not (tmp_path / "s.vtt").exists()

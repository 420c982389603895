"""The examples `vidpipe model teach` reads: images and short videos per class folder, frames spread
over each video, unreadable files skipped with a warning; calibration images for `import`."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.media import random_bytes, write_video
from vidpipe.hw.model_build import photos
from vidpipe.pipeline.errors import ConfigError
from vidpipe.stages.jobs.model_examples import examples_in, images_in


def test_images_and_videos_per_class(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = photos()
    (tmp_path / "cat").mkdir()
    (tmp_path / "belt").mkdir()
    cv2.imwrite(str(tmp_path / "cat" / "a.jpg"), p["chelsea"])
    cv2.imwrite(str(tmp_path / "cat" / "b.png"), p["chelsea"][:, ::-1])
    random_bytes(tmp_path / "cat" / "broken.jpg")
    write_video(tmp_path / "belt" / "run.mp4", frames=40)  # the frame index is drawn in each frame
    write_video(tmp_path / "belt" / "short.mkv", frames=3)
    (tmp_path / "belt" / "notes.txt").write_text("not a picture")
    with caplog.at_level(logging.WARNING):
        examples = examples_in(tmp_path, frames_per_video=8)
    by_file = {Path(e.source).name: e for e in examples}
    assert sorted(by_file) == ["a.jpg", "b.png", "run.mp4", "short.mkv"]
    assert by_file["a.jpg"].label == "cat" and by_file["run.mp4"].label == "belt"
    assert by_file["a.jpg"].tensors.shape == (1, 224, 224, 3) and by_file["a.jpg"].tensors.dtype == np.int8
    assert by_file["run.mp4"].tensors.shape[0] == 8 and by_file["short.mkv"].tensors.shape[0] == 3
    first, last = by_file["run.mp4"].tensors[0], by_file["run.mp4"].tensors[-1]
    assert np.abs(first.view(np.uint8).astype(int) - last.view(np.uint8).astype(int)).mean() > 5  # spread out
    assert "broken.jpg: not a readable image, skipped" in caplog.text


def test_nothing_to_learn_from_or_calibrate_on_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no images or videos in subfolders"):
        examples_in(tmp_path)
    with pytest.raises(ConfigError, match="no readable images"):
        images_in(tmp_path)
    cv2.imwrite(str(tmp_path / "x.jpg"), photos()["coffee"])
    assert len(images_in(tmp_path)) == 1

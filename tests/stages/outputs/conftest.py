"""A real labeling job, run once for the report and summary tests: three scenes in one video (the
labels change), a video with spaces and a '#' in its name, and a corrupt input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.media import random_bytes, write_video
from tests.stages.jobs.test_label_job import photo
from vidpipe.stages.jobs.cli import main


@dataclass(frozen=True)
class LabeledJob:
    inputs: Path
    out: Path  # with the annotated videos
    plain: Path  # --no-video: the report plays the inputs


@pytest.fixture(scope="session")
def labeled(tmp_path_factory: pytest.TempPathFactory) -> LabeledJob:
    root = tmp_path_factory.mktemp("labeled")
    inputs = root / "in"
    inputs.mkdir()
    scenes = [photo("chelsea"), photo("coffee"), photo("rocket")]
    write_video(inputs / "scenes.mp4", frames=120, width=320, height=180, fps=25, scenes=scenes)
    write_video(inputs / "cup shot #1.mp4", frames=30, width=240, height=160, fps=30, photo=photo("coffee"))
    random_bytes(inputs / "broken.mp4")
    job = LabeledJob(inputs, root / "out", root / "plain")
    common = ["--backend", "cpu", "--no-progress", "--batch", "8"]
    assert main(["label", str(inputs), "--out", str(job.out), *common]) == 1  # broken.mp4 fails
    assert main(["label", str(inputs), "--out", str(job.plain), "--no-video", *common]) == 1
    return job

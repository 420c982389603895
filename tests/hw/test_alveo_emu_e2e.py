"""End to end: `vidpipe label` on the emulated card (the whole alveo path through pynq 3.0.1)
labels every frame exactly as the cpu backend does: the card runs the same model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from skimage import data

from stages.jobs import cli
from tests.media import write_video


@pytest.fixture(scope="module")
def cat_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    photo = cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR)
    return write_video(tmp_path_factory.mktemp("video") / "cat.mp4", frames=12, width=160, height=120, photo=photo)


def _label(video: Path, out: Path, backend: str) -> list[list[int]]:
    code = cli.main(["label", str(video), "--out", str(out), "--backend", backend, "--no-progress", "--no-video"])
    assert code == 0
    records = [json.loads(line) for line in (out / f"{video.stem}.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(len(records)))
    return [r["top5"] for r in records]


def test_alveo_emu_labels_every_frame_as_cpu(cat_video: Path, tmp_path: Path, int8_model: Path) -> None:
    emulated = _label(cat_video, tmp_path / "emu", "alveo-emu")
    cpu = _label(cat_video, tmp_path / "cpu", "cpu")
    assert len(emulated) == 12
    assert emulated == cpu
    assert {frame[0] for frame in emulated} <= {281, 282, 285}  # tabby, tiger cat, Egyptian cat


def test_two_cards_share_the_work_and_agree_with_cpu(cat_video: Path, tmp_path: Path, int8_model: Path) -> None:
    """One infer process per card, the batches spread over both; results still in order."""
    config = tmp_path / "two.yaml"
    config.write_text("backend:\n  name: alveo-emu\n  max_batch: 2\n  alveo:\n    devices: [0, 1]\n")
    code = cli.main(["label", str(cat_video), "--config", str(config), "--out", str(tmp_path / "two"),
                     "--no-progress", "--no-video"])
    assert code == 0
    records = [json.loads(line) for line in (tmp_path / "two" / "cat.jsonl").read_text().splitlines()]
    assert [r["top5"] for r in records] == _label(cat_video, tmp_path / "cpu", "cpu")

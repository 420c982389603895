"""`--profile`: the reference host script's per-image breakdown, from the JSONL timings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import write_video
from vidpipe.stages.jobs.cli import main


@pytest.mark.parametrize("backend", ["sim", "alveo-emu"])
def test_profile_prints_upload_accelerator_and_download_per_image(
    tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    video = write_video(tmp_path / "a.mp4", frames=24, width=160, height=120)
    args = ["label", str(video), "--out", str(tmp_path / "out"), "--backend", backend, "--batch", "8", "--no-video",
            "--no-progress", "--profile"]
    assert main(args) == 0
    out = capsys.readouterr().out
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1] and
             line.split()[0] in ("upload", "accelerator", "download", "preprocess", "queue", "infer", "sink")}
    assert set(table) == {"upload", "accelerator", "download", "preprocess", "queue", "infer", "sink"}
    assert all(row[0] == "24" for row in table.values())  # every frame counted
    mean_accelerator = float(table["accelerator"][1])
    if backend == "sim":  # the timing model: (1.5 ms + 0.5 ms x 8) / 8 images per batch
        assert mean_accelerator == pytest.approx((1.5 + 0.5 * 8) / 8, rel=0.5)
    assert "published (U250, ResNet50-PYNQ): batch 1: 2.02 ms per image" in out
    assert "batch 1000: 496.14 ms per batch (0.50 ms per image, 2015 FPS)" in out

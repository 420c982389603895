"""Damage reported: a file with random bytes in the middle decodes on with concealed pictures;
those frames are counted and named, their JSONL lines say `damaged: true`, the video is done with a
warning (summary.csv, the report), or fails above preprocess.max_damaged_share."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.media import damage, write_video
from tests.processes import VIDPIPE
from tests.stages.jobs.test_label_job import photo

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("damage")
    whole = write_video(d / "whole.mp4", frames=300, width=320, height=240, photo=photo("chelsea"))
    return damage(whole, d / "broken.mp4", where=0.8)


def label(video: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIDPIPE, "label", str(video), "--out", str(out), "--no-progress", "-b", "sim", *extra],
                          capture_output=True, text=True, timeout=120)


def test_damaged_frames_are_counted_named_and_marked(damaged: Path, tmp_path: Path) -> None:
    run = label(damaged, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in (tmp_path / "out" / "broken.jsonl").read_text().splitlines()]
    bad = [r["frame"] for r in rows if r.get("damaged")]
    assert len(rows) == 300 and bad and len(bad) < 300
    said = f"{len(bad)} frame{'s' if len(bad) > 1 else ''} decoded with errors, "
    said += f"frames {bad[0]}..{bad[-1]}" if len(bad) > 1 else f"frame {bad[0]}"
    assert f"broken.mp4: {said}" in run.stderr and "WARNING" in run.stderr
    video = json.loads((tmp_path / "out" / "summary.json").read_text())["videos"][0]
    assert video["status"] == "done" and video["warning"] == said
    assert said in (tmp_path / "out" / "summary.csv").read_text()
    assert said in (tmp_path / "out" / "index.html").read_text()


def test_a_whole_file_has_no_damage(tmp_path: Path) -> None:
    whole = write_video(tmp_path / "whole.mp4", frames=40, width=320, height=240, photo=photo("chelsea"))
    run = label(whole, tmp_path / "out")
    assert run.returncode == 0 and "decoded with errors" not in run.stderr
    lines = (tmp_path / "out" / "whole.jsonl").read_text().splitlines()
    assert not any(json.loads(line).get("damaged") for line in lines)


def test_too_much_damage_fails_the_video(damaged: Path, tmp_path: Path) -> None:
    config = tmp_path / "strict.yaml"
    config.write_text("preprocess:\n  max_damaged_share: 0.0\n")
    run = label(damaged, tmp_path / "out", "-c", str(config))
    assert run.returncode == 1
    assert "decoded with errors" in run.stderr
    assert "more than 0% of its frames (preprocess.max_damaged_share)" in run.stderr
    video = json.loads((tmp_path / "out" / "summary.json").read_text())["videos"][0]
    assert video["status"] == "failed"

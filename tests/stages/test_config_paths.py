"""Paths in a config file are relative to the file's folder; paths on the command line to the current directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.media import write_video
from vidpipe.stages.config import load_job
from vidpipe.stages.jobs.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_relative_paths_in_a_config_are_relative_to_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    config = folder / "job.yaml"
    config.write_text(
        "inputs: [clips/a.mp4, /abs/b.mp4, ../c]\n"
        "output:\n  dir: out\n"
        "backend:\n  cpu:\n    model: models/m.onnx\n  alveo:\n    xclbin: x.xclbin\n    fc_weights: ~/w.npy\n"
        "live:\n  sources:\n    - uri: '0'\n    - uri: rtsp://u:p@cam/s\n    - uri: clips/loop.mp4\n"
        "    - uri: /dev/video2\n    - uri: http://cam2/video.mjpg\n")
    monkeypatch.chdir(tmp_path / "..")  # anywhere else
    job = load_job(config)
    assert job.inputs == (str(folder / "clips/a.mp4"), "/abs/b.mp4", str(tmp_path / "c"))
    assert job.output.dir == str(folder / "out")
    assert job.backend.cpu.model == str(folder / "models/m.onnx")
    assert job.backend.alveo.xclbin == str(folder / "x.xclbin")
    assert job.backend.alveo.fc_weights == os.path.expanduser("~/w.npy")
    assert job.backend.alveo.labels == ""  # not set: the default, "" (built-in names)
    assert [s.uri for s in job.live.sources] == ["0", "rtsp://u:p@cam/s", str(folder / "clips/loop.mp4"),
                                                 "/dev/video2", "http://cam2/video.mjpg"]
    (folder / "bare.yaml").write_text("job: label\n")
    assert load_job(folder / "bare.yaml").output.dir == "results"  # defaults stay relative to where you are


def test_the_shipped_config_finds_the_sample_from_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    job = load_job(ROOT / "configs" / "label-videos.yaml")
    assert job.inputs == (str(ROOT / "sample" / "sample.mp4"),) and job.output.dir == str(ROOT / "results")


def test_vidpipe_run_works_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    (project / "clips").mkdir(parents=True)
    write_video(project / "clips" / "a.mp4", frames=6)
    config = project / "job.yaml"
    config.write_text("inputs: [clips]\noutput:\n  dir: labels\n  video: false\nbackend:\n  name: sim\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_video(elsewhere / "here.mp4", frames=4)
    monkeypatch.chdir(elsewhere)
    assert main(["run", str(config), "--no-progress"]) == 0
    assert len((project / "labels" / "a.jsonl").read_text().splitlines()) == 6
    assert main(["run", str(config), "here.mp4", "--out", "mine", "--no-progress"]) == 0  # command line: cwd
    assert len((elsewhere / "mine" / "here.jsonl").read_text().splitlines()) == 4
    assert json.loads((elsewhere / "mine" / "summary.json").read_text())["videos"][0]["video"] == "here"

"""The card's replaceable last layer: a user's FC weights and labels are checked before a run, one
line per problem (shape, range, count, rows without a name), exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.media import write_video
from vidpipe.hw.alveo_head import OFF, head_problems
from vidpipe.hw.settings import AlveoSettings, BackendSettings, CpuSettings
from vidpipe.stages.jobs.cli import main


def _settings(tmp_path: Path, weights: np.ndarray | None, labels: list[str] | None = None,
              **alveo: object) -> BackendSettings:
    path = tmp_path / "fc.npy"
    if weights is not None:
        np.save(path, weights)
    names = ""
    if labels is not None:
        (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n")
        names = str(tmp_path / "labels.txt")
    return BackendSettings(name="alveo", alveo=AlveoSettings(fc_weights=str(path), labels=names, **alveo))  # type: ignore[arg-type]


def _weights(rows: int = 1000, fill_off_from: int | None = None) -> np.ndarray:
    w = np.random.default_rng(0).integers(-127, 128, (rows, 2048), dtype=np.int8)
    if fill_off_from is not None:
        w[fill_off_from:] = OFF
    return w


def test_a_head_of_fewer_classes_fills_the_other_rows_with_the_lowest_value(tmp_path: Path) -> None:
    assert head_problems(_settings(tmp_path, _weights(fill_off_from=3), ["empty", "truck", "forklift"])) == []
    assert head_problems(_settings(tmp_path, _weights())) == []  # 1000 rows, the built-in names
    (problem,) = head_problems(_settings(tmp_path, _weights(), ["empty", "truck", "forklift"]))
    assert "rows 3..999 have no name" in problem and "997 of them are not all -128 (first: row 3)" in problem
    w = _weights(fill_off_from=3)
    w[1] = OFF
    (problem,) = head_problems(_settings(tmp_path, w, ["empty", "truck", "forklift"]))
    assert "1 named row(s) are all -128 (first: row 1)" in problem


def test_every_problem_is_one_line(tmp_path: Path) -> None:
    problems = head_problems(_settings(tmp_path, _weights(rows=999), [f"c{i}" for i in range(1001)]))
    assert len(problems) == 2
    assert problems[0].startswith("backend.alveo.fc_weights: FC weights file") and "shape (999, 2048)" in problems[0]
    assert problems[1].startswith("backend.alveo.labels:") and "found 1001" in problems[1]
    csv = tmp_path / "fc.csv"
    csv.write_text(",".join(["300"] + ["0"] * (1000 * 2048 - 1)) + ",\n")
    settings = BackendSettings(name="alveo", alveo=AlveoSettings(fc_weights=str(csv)))
    (problem,) = head_problems(settings)
    assert "value 0 is 300, outside int8 -128..127" in problem
    missing = head_problems(_settings(tmp_path / "none", None))
    assert len(missing) == 1 and "not found" in missing[0]
    other = BackendSettings(name="alveo", cpu=CpuSettings(model="bay"), alveo=AlveoSettings(fc_weights=str(csv)))
    assert any(p.startswith("backend.cpu.model (bay): a card runs the backbone in its xclbin") for p in
               head_problems(other))


def test_fc_weights_of_the_wrong_shape_stop_a_run_before_it_starts(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "fc.npy", _weights()[:, :2047])
    cfg = tmp_path / "card.yaml"
    cfg.write_text(f"backend:\n  name: alveo-emu\n  alveo:\n    fc_weights: {tmp_path / 'fc.npy'}\n")
    clip = write_video(tmp_path / "clip.mp4", frames=5)
    out = tmp_path / "out"
    assert main(["label", str(clip), "-c", str(cfg), "-o", str(out), "--no-progress"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "backend.alveo.fc_weights: FC weights file" in err[0]
    assert "shape (1000, 2047), expected (1000, 2048)" in err[0]
    assert not out.exists()

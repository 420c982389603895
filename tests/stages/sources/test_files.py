from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import SourceError
from stages.sources.files import find_videos, probe
from tests.media import random_bytes, truncate, write_video


def test_probe_reads_geometry(tmp_path: Path) -> None:
    info = probe(str(write_video(tmp_path / "a.mp4", frames=12, width=96, height=64, fps=30)), "a")
    assert (info.width, info.height, info.frame_count, info.stream) == (96, 64, 12, "a")
    assert info.fps == pytest.approx(30)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: ((d / "empty.mp4").write_bytes(b"") and d / "empty.mp4") or d / "empty.mp4", "empty file"),
        (lambda d: random_bytes(d / "noise.mp4"), "not a readable video"),
        (lambda d: truncate(write_video(d / "full.mp4", frames=30), d / "cut.mp4"), "not a readable video"),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    with pytest.raises(SourceError) as err:
        probe(str(path), "x")
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def test_find_videos_expands_folders_and_reports_empty_ones(tmp_path: Path) -> None:
    (tmp_path / "v" / "sub").mkdir(parents=True)
    write_video(tmp_path / "v" / "b.mp4", frames=2)
    write_video(tmp_path / "v" / "sub" / "a.mkv", frames=2)
    (tmp_path / "v" / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    paths, errors = find_videos([str(tmp_path / "v"), str(tmp_path / "empty"), str(tmp_path / "nope.mp4")])
    assert [Path(p).name for p in paths] == ["b.mp4", "a.mkv"]
    assert len(errors) == 2 and "has no video files" in str(errors[0]) and "no such file" in str(errors[1])
    assert errors[1].path == str(tmp_path / "nope.mp4")  # the error names its input as a field too

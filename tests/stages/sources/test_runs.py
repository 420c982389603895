"""A long file decoded in runs by several decode workers at once (stages.sources.runs): the same
frame numbers, timestamps and labels as one decoder for CFR, VFR, B-frame and turned (display
matrix) files; a truncated file cut in runs fails in one line and the other files go on; where the
cuts fall."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from tests.media import set_turns, truncate, write_gop_video
from vidpipe.stages.jobs.cli import main
from vidpipe.stages.sources.files import VideoInfo, probe
from vidpipe.stages.sources.runs import FrameIndex, VideoRun, cuts

pytestmark = pytest.mark.timeout(180)


def label(videos: list[Path], out: Path, split_min_frames: int) -> int:
    """`vidpipe label --no-video` (cpu: real labels) with up to 8 decode workers (forked: quick)."""
    config = out.with_suffix(".yaml")
    config.write_text(f"runtime:\n  max_open_sources: 8\n  split_min_frames: {split_min_frames}\n")
    return main(["label", *map(str, videos), "--out", str(out), "--config", str(config), "--backend", "cpu",
                 "--batch", "16", "--no-video", "--no-progress", "-vv", "--start-method", "fork"])


def frames(path: Path) -> list[tuple[int, float, int]]:
    """(frame, t, top-1 class) of each line of a JSONL output."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["frame"], r["t"], r["top5"][0]) for r in rows]


def runs_in(err: str, stem: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(rf"{stem}: decoding frames (\d+)\.\.(\d+) in worker", err)]


def test_runs_give_every_frame_its_number_time_and_label_as_one_decoder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_leaks: None
) -> None:
    videos = [write_gop_video(tmp_path / "cfr.mp4", 100, 20),
              write_gop_video(tmp_path / "bframes.mp4", 100, 20, bframes=True),
              write_gop_video(tmp_path / "vfr.mp4", 100, 20, vfr=True),
              set_turns(write_gop_video(tmp_path / "turned.mp4", 100, 20, width=72, height=96), 1)]  # upright
    assert (probe(str(videos[3]), "t").width, probe(str(videos[3]), "t").height) == (96, 72)  # shown turned
    assert label(videos, tmp_path / "one", 0) == 0
    assert "decoding frames" not in capsys.readouterr().err
    assert label(videos, tmp_path / "runs", 40) == 0
    err = capsys.readouterr().err
    for video in videos:
        runs = sorted(runs_in(err, video.stem))  # 8 workers, 4 files: 2 runs each, cut mid-GOP (balanced)
        assert len(runs) == 2 and runs[0][0] == 0 and runs[1] == (runs[0][1] + 1, 99), runs
        one, split = frames(tmp_path / "one" / f"{video.stem}.jsonl"), frames(tmp_path / "runs" / f"{video.stem}.jsonl")
        assert [f for f, _, _ in one] == list(range(100))
        assert split == one
        assert len({top for _, _, top in one}) > 1  # the labels change (cat, coffee): a shift would show
    vfr_times = [t for _, t, _ in frames(tmp_path / "runs" / "vfr.jsonl")]
    assert len({round(b - a, 3) for a, b in itertools.pairwise(vfr_times)}) > 2


def test_a_truncated_file_cut_in_runs_fails_in_one_line_and_the_other_files_go_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_leaks: None
) -> None:
    good = write_gop_video(tmp_path / "good.mp4", 30, 10)
    cut = truncate(write_gop_video(tmp_path / "long.mkv", 200, 24), tmp_path / "cut.mkv", keep=0.6)
    assert label([good, cut], tmp_path / "out", 40) == 1
    err = capsys.readouterr().err
    assert len(runs_in(err, "cut")) >= 2
    problem = [line for line in err.splitlines() if "cut.mkv: decoded" in line]
    assert len(problem) == 1 and "of 200 frames: file truncated" in problem[0], err
    sent = int(re.search(r"decoded (\d+) of", problem[0]).group(1))  # type: ignore[union-attr]
    assert 40 < sent < 200
    assert [f for f, _, _ in frames(tmp_path / "out" / "cut.jsonl")] == list(range(sent))
    assert [f for f, _, _ in frames(tmp_path / "out" / "good.jsonl")] == list(range(30))
    states = {v["name"]: v["state"] for v in json.loads((tmp_path / "out" / "vidpipe-manifest.json").read_text())
              ["videos"].values()}
    assert states == {"good": "done", "cut": "failed"}


def test_cuts_balance_each_runs_frames_and_those_it_decodes_and_drops_before_its_start() -> None:
    long_gops = FrameIndex(tuple(40.0 * i for i in range(600)), (0, 250, 500))
    assert cuts(long_gops, 2, 100) == [(0, 333), (333, 600)]  # 333 frames; 267 + 0.8 x 83 dropped
    assert cuts(long_gops, 2, 300) == [(0, 300), (300, 600)]  # runs of runtime.split_min_frames at least
    short_gops = FrameIndex(long_gops.times_ms, tuple(range(0, 600, 12)))
    runs = cuts(short_gops, 4, 100)
    assert len(runs) == 4 and runs[0][0] == 0 and runs[-1][1] == 600 and all(140 <= b - a <= 160 for a, b in runs)
    run = VideoRun(VideoInfo("v.mp4", "v", 8, 8, 25.0, 600), 1, 2, 333, 600, 250, long_gops.times_ms[250:600])
    assert [run.index_of(ms) for ms in (0.0, 40.0 * 250, 40.0 * 333, 40.0 * 599, 40.0 * 700, 10_001.0)] == \
        [-1, 250, 333, 599, 600, None]

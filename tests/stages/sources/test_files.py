from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from tests.media import random_bytes, truncate, write_video
from vidpipe.pipeline.errors import SourceError
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.testing import run_inline
from vidpipe.stages.descriptors import StreamEnd, StreamStart
from vidpipe.stages.events import SourceProblem
from vidpipe.stages.sources.files import (
    SEND_BATCH,
    FileQueue,
    FileSourceParams,
    FileSourceStage,
    VideoInfo,
    find_videos,
    probe,
)


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


def queued(*videos: VideoInfo) -> FileQueue:
    """The files for one worker, as a job queues them."""
    files = FileQueue(multiprocessing.get_context("spawn"))
    for video in videos:
        files.put(video)
    files.end(1)
    return files


def test_the_stage_decodes_every_frame_in_order_into_slots(tmp_path: Path) -> None:
    path = write_video(tmp_path / "a.mp4", frames=12, width=96, height=64, fps=30)
    ring = SlotRing(multiprocessing.get_context("spawn"), 16, 96 * 64 * 3, "frames")
    try:
        got = run_inline(FileSourceStage, FileSourceParams(queued(probe(str(path), "a")), ring))
        start, *refs, end = got.items
        assert isinstance(start, StreamStart) and (start.width, start.height, start.frame_count) == (96, 64, 12)
        assert [r.seq for r in refs] == list(range(12)) and end == StreamEnd("a", 12, "")
        assert all(len(b) <= SEND_BATCH for b in got.batches) and got.events == []
        assert ring.view(refs[5].slot, (64, 96, 3)).any()  # pixels are in the slot, not in the queue
    finally:
        ring.close()
        ring.unlink()


def test_a_truncated_file_ends_early_with_one_line(tmp_path: Path) -> None:
    path = truncate(write_video(tmp_path / "full.mkv", frames=60, width=96, height=64), tmp_path / "cut.mkv")
    ring = SlotRing(multiprocessing.get_context("spawn"), 64, 96 * 64 * 3, "frames")
    try:
        info = probe(str(path), "cut")
        got = run_inline(FileSourceStage, FileSourceParams(queued(info), ring))
        end = got.items[-1]
        assert isinstance(end, StreamEnd) and 0 < end.frames < 60 and "truncated" in end.error
        assert got.events == [SourceProblem("cut", str(path), f"{path}: {end.error}")]
    finally:
        ring.close()
        ring.unlink()


def test_one_worker_decodes_file_after_file_and_a_bad_one_fails_alone(tmp_path: Path) -> None:
    """A worker takes the queue's files in turn, whatever their size (a slot holds the largest);
    a file that became unreadable after it was planned ends its own stream with one line."""
    small = probe(str(write_video(tmp_path / "small.mp4", frames=5, width=64, height=48)), "small")
    gone = probe(str(write_video(tmp_path / "gone.mp4", frames=5, width=64, height=48)), "gone")
    big = probe(str(write_video(tmp_path / "big.mp4", frames=7, width=96, height=64)), "big")
    random_bytes(Path(gone.path))  # corrupted between planning and decoding
    ring = SlotRing(multiprocessing.get_context("spawn"), 16, 96 * 64 * 3, "frames")
    try:
        got = run_inline(FileSourceStage, FileSourceParams(queued(small, gone, big), ring))
        ends = [i for i in got.items if isinstance(i, StreamEnd)]
        assert [(e.stream, e.frames) for e in ends] == [("small", 5), ("gone", 0), ("big", 7)]
        assert ends[0].error == ends[2].error == "" and "not a readable video" in ends[1].error
        assert got.events == [SourceProblem("gone", gone.path, f"{gone.path}: {ends[1].error}")]
        assert [i.stream for i in got.items if isinstance(i, StreamStart)] == ["small", "gone", "big"]
    finally:
        ring.close()
        ring.unlink()


def test_closing_a_queue_of_files_never_taken_ends_its_feeder_thread() -> None:
    """A job stopped early leaves thousands of files queued, more than the pipe holds: closing the
    queue must not leave its feeder thread blocked (a Ray worker's process lives on)."""
    files = FileQueue(multiprocessing.get_context("spawn"))
    for i in range(5000):
        files.put(VideoInfo(f"/videos/{i:05d}.mp4", f"v{i}", 64, 48, 25.0, 10))
    files.end(2)
    feeder = files._q._thread  # multiprocessing's feeder thread, started by the first put
    files.close()
    feeder.join(10)
    assert not feeder.is_alive()

"""Which videos share a Ray task (stages.jobs.ray_driver.group_videos): no cluster needed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from vidpipe.pipeline.config import replace_path
from vidpipe.stages.config import JobConfig, with_job_defaults
from vidpipe.stages.events import StreamDone
from vidpipe.stages.jobs.ray_driver import group_videos
from vidpipe.stages.sources.files import VideoInfo


def video(name: str, frames: int) -> VideoInfo:
    return VideoInfo(path=f"/in/{name}.mp4", stream=name, width=640, height=360, fps=30.0, frame_count=frames)


def names(tasks: list[list[VideoInfo]]) -> list[list[str]]:
    return [[v.stream for v in task] for task in tasks]


def test_long_videos_run_alone_and_short_ones_together_longest_first() -> None:
    videos = [video("s1", 900), video("long", 50_000), video("s2", 800), video("s3", 700), video("mid", 19_000)]
    tasks = group_videos(videos, task_frames=20_000, slots=1)  # 71,400 frames / 4 tasks per slot: 17,850
    assert names(tasks) == [["long"], ["mid"], ["s1", "s2", "s3"]]
    assert names(group_videos(videos, task_frames=1_600, slots=1)) == [["long"], ["mid"], ["s1"], ["s2", "s3"]]


def test_videos_of_unknown_length_run_alone() -> None:
    videos = [video("a", 30_000), video("b", 30_000), *(video(f"u{i}", 0) for i in range(5))]
    assert names(group_videos(videos, task_frames=20_000, slots=1)) == [["a"], ["b"], *([f"u{i}"] for i in range(5))]


def test_every_slot_gets_tasks_before_videos_are_grouped() -> None:
    shorts = [video(f"s{i}", 100) for i in range(40)]  # 4,000 frames
    assert len(group_videos(shorts, task_frames=20_000, slots=1)) == 4  # 1,000 frames a task
    assert len(group_videos(shorts, task_frames=20_000, slots=2)) == 8  # at least 4 tasks per slot
    assert len(group_videos([video(f"s{i}", 400) for i in range(6)], 20_000, slots=1)) == 6  # 600: one each
    assert len(group_videos(shorts, task_frames=20_000, slots=10)) == 40  # 4 x 10 slots: no grouping
    assert len(group_videos(shorts, task_frames=0, slots=1)) == 40  # 0: a video per task
    assert sorted(v.stream for t in group_videos(shorts, 500, 1) for v in t) == sorted(v.stream for v in shorts)


def test_a_stage_failure_in_a_group_fails_only_the_video_that_causes_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The graph is replaced by its outcome here: a group with `bad` in it fails after `a`."""
    from vidpipe.stages.jobs import ray_worker

    graphs: list[list[str]] = []

    def run(config: JobConfig, videos: list[VideoInfo], staging: Path) -> tuple[object, str]:
        graphs.append([v.stream for v in videos])
        done = {}
        for v in videos:
            if v.stream == "bad":
                break
            (staging / f"{v.stream}.jsonl").write_text("{}\n")
            done[v.stream] = StreamDone(v.stream, v.path, 10, 0, 1.0)
        problem = "stage 'decode:bad' failed: it crashed" if "bad" in [v.stream for v in videos] else ""
        return SimpleNamespace(report=SimpleNamespace(done=done, failed={}, warnings={}), config=config), problem

    monkeypatch.setattr(ray_worker, "worker_host", lambda: "host")
    monkeypatch.setattr(ray_worker, "_run", run)
    group = []
    for name in ("a", "bad", "c", "d"):
        (tmp_path / f"{name}.mp4").write_bytes(b"x")  # readable: the worker checks that first
        group.append(VideoInfo(str(tmp_path / f"{name}.mp4"), name, 64, 48, 10.0, 10))
    out = tmp_path / "out"
    out.mkdir()
    config = replace_path(JobConfig(), "output.video", False)
    results = ray_worker.label_videos(config, group, str(out))
    assert graphs == [["a", "bad", "c", "d"], ["bad"], ["c"], ["d"]]  # the unfinished ones, alone
    assert [(r.stream, r.frames, r.error) for r in results] == [
        ("a", 10, ""), ("bad", 0, "stage 'decode:bad' failed: it crashed"), ("c", 10, ""), ("d", 10, "")]
    assert sorted(p.name for p in out.iterdir()) == [ray_worker.STAGING, "a.jsonl", "c.jsonl", "d.jsonl"]
    assert not list((out / ray_worker.STAGING).iterdir())  # each graph's staging is gone (the driver removes the rest)


def test_a_task_sizes_its_processes_for_its_cpus_not_the_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidpipe.stages.jobs import ray_worker

    config = replace_path(with_job_defaults(JobConfig()), "runtime.max_open_sources", 32)  # a 64-core driver
    sized = ray_worker.sized_for_the_task(replace_path(config, "cluster.cpus_per_worker", 4.0))
    assert sized.preprocess.workers == 4 and sized.runtime.max_open_sources == 2
    explicit = replace_path(replace_path(config, "preprocess.workers", 3), "cluster.cpus_per_worker", 8.0)
    assert ray_worker.sized_for_the_task(explicit).preprocess.workers == 3  # set by hand: kept
    monkeypatch.setattr(ray_worker, "_node_resources", lambda: {"CPU": 32.0, "alveo": 2.0})
    card = ray_worker.sized_for_the_task(replace_path(config, "backend.name", "alveo"))
    assert card.preprocess.workers == 16 and card.runtime.max_open_sources == 8  # the node's CPUs per card

"""Which videos share a Ray task (stages.jobs.ray_driver.group_videos): no cluster needed."""

from __future__ import annotations

from stages.jobs.ray_driver import group_videos
from stages.sources.files import VideoInfo


def video(name: str, frames: int) -> VideoInfo:
    return VideoInfo(path=f"/in/{name}.mp4", stream=name, width=640, height=360, fps=30.0, frame_count=frames)


def names(tasks: list[list[VideoInfo]]) -> list[list[str]]:
    return [[v.stream for v in task] for task in tasks]


def test_long_videos_run_alone_and_short_ones_together_longest_first() -> None:
    videos = [video("s1", 900), video("long", 50_000), video("s2", 800), video("s3", 700), video("mid", 19_000)]
    tasks = group_videos(videos, task_frames=20_000, slots=1)  # 71,400 frames / 4 tasks per slot: 17,850
    assert names(tasks) == [["long"], ["mid"], ["s1", "s2", "s3"]]


def test_every_slot_gets_tasks_before_videos_are_grouped() -> None:
    shorts = [video(f"s{i}", 100) for i in range(40)]  # 4,000 frames
    assert len(group_videos(shorts, task_frames=20_000, slots=1)) == 4  # 1,000 frames a task
    assert len(group_videos(shorts, task_frames=20_000, slots=10)) == 40  # 4 x 10 slots: no grouping
    assert len(group_videos(shorts, task_frames=0, slots=1)) == 40  # 0: a video per task
    assert sorted(v.stream for t in group_videos(shorts, 500, 1) for v in t) == sorted(v.stream for v in shorts)

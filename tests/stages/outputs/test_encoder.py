"""Encoder processes (stages.outputs.encoder): several streams on one lane, each video in order
with its own labels, StreamDone reported after the video is published, every frame slot released;
a video that cannot be written fails its stream only. End to end: a label job with several
encoder processes writes every video whole and in order."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.media import pattern_frame, write_video
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.testing import run_inline
from vidpipe.stages.descriptors import FrameRef
from vidpipe.stages.events import SourceProblem, StreamDone
from vidpipe.stages.jobs.cli import main
from vidpipe.stages.outputs.annotate import VideoSpec
from vidpipe.stages.outputs.encoder import EncodeStage, VideoClose, VideoFrame, VideoLabel, VideoOpen
from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import SmoothedLabel
from vidpipe.stages.sink import LaneParams

W, H, N, LAG = 96, 64, 12, 3


@pytest.fixture
def frames() -> Iterator[SlotRing]:
    ring = SlotRing(multiprocessing.get_context("spawn"), 64, W * H * 3, "frames")
    yield ring
    ring.close()
    ring.unlink()


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24").astype(int) for f in container.decode(video=0)]


def in_order(video: list[np.ndarray], width: int, height: int) -> bool:
    """Frame i looks like pattern frame i below the overlay (top-left), more than like i +- 1."""
    def diff(a: np.ndarray, i: int) -> float:
        return float(np.abs(a[height // 2:] - pattern_frame(i, width, height)[height // 2:].astype(int)).mean())

    return all(diff(f, i) < min(diff(f, j) for j in (i - 1, i + 1) if 0 <= j < len(video)) for i, f in enumerate(video))


def stream_items(ring: SlotRing, stream: str, out: Path) -> list[Any]:
    """What the sink sends for one stream: open, frames (labels LAG frames later), close, done."""
    items: list[Any] = [VideoOpen(stream, f"{stream}.mp4", VideoSpec(str(out / f"{stream}.mp4"), W, H, 25.0,
                                                                     "ultrafast", 18, 1, 3))]
    for i in range(N):
        slot = ring.acquire(1.0)
        assert slot is not None
        ring.view(slot, (H, W, 3))[:] = pattern_frame(i, W, H)
        label = FrameLabel(stream, i, i / 25, (1, 2, 3, 4, 5), tuple("abcde"), (0.5, 0.2, 0.1, 0.1, 0.1), 1.0)
        items.append(VideoFrame(FrameRef(stream, i, slot, H, W, i / 25, 0.0), label))
        if i >= LAG:
            items.append(VideoLabel(stream, SmoothedLabel(i - LAG, (i - LAG) / 25, 1, "a", 0.5)))
    items += [VideoLabel(stream, SmoothedLabel(i, i / 25, 1, "a", 0.5)) for i in range(N - LAG, N)]
    return [*items, VideoClose(stream, False), StreamDone(stream, f"{stream}.mp4", N, 0, 1.0)]


def interleave(a: list[Any], b: list[Any], size: int) -> list[list[Any]]:
    """Both streams' items, alternating, cut into inbox batches of `size` (frames wait across batches)."""
    merged = [x for pair in zip(a, b, strict=True) for x in pair]
    return [merged[i:i + size] for i in range(0, len(merged), size)]


def test_streams_sharing_an_encoder_are_each_written_in_order(frames: SlotRing, tmp_path: Path) -> None:
    batches = interleave(stream_items(frames, "one", tmp_path), stream_items(frames, "two", tmp_path), 5)
    got = run_inline(EncodeStage, LaneParams(frames), batches=batches)
    assert frames.free_count() == frames.slots  # every slot released (encoded, or copied and released)
    done = [e for e in got.events if isinstance(e, StreamDone)]
    assert [d.stream for d in done] == ["one", "two"] and not any(d.error for d in done)
    for name in ("one", "two"):
        video = decoded(tmp_path / f"{name}.mp4")  # published before its StreamDone was reported
        assert len(video) == N and in_order(video, W, H)
        assert not (tmp_path / f"{name}.mp4.part").exists()


def test_a_video_that_cannot_be_written_fails_its_stream_only(frames: SlotRing, tmp_path: Path) -> None:
    bad = [VideoOpen("bad", "bad.mp4", VideoSpec(str(tmp_path / "gone" / "bad.mp4"), W, H, 25.0, "ultrafast",
                                                 18, 1, 3)), *stream_items(frames, "bad", tmp_path)[1:]]
    batches = interleave(bad, stream_items(frames, "good", tmp_path), 7)
    got = run_inline(EncodeStage, LaneParams(frames), batches=batches)
    assert frames.free_count() == frames.slots
    problems = [e for e in got.events if isinstance(e, SourceProblem)]
    assert [p.stream for p in problems] == ["bad"] and "cannot write" in problems[0].message
    done = {e.stream: e for e in got.events if isinstance(e, StreamDone)}
    assert done["bad"].error == problems[0].message and not done["good"].error
    assert len(decoded(tmp_path / "good.mp4")) == N


@pytest.mark.timeout(180)
def test_a_label_job_with_several_encoders_writes_every_video_whole_and_in_order(tmp_path: Path) -> None:
    sizes = {"a": (160, 120, 23), "b": (176, 144, 31), "c": (128, 96, 17)}
    for name, (w, h, n) in sizes.items():
        write_video(tmp_path / f"{name}.mp4", frames=n, width=w, height=h)
    config = tmp_path / "job.yaml"
    config.write_text(json.dumps({"backend": {"name": "sim", "max_batch": 4},
                                  "output": {"encoders": 2, "video_preset": "ultrafast", "video_crf": 18},
                                  "runtime": {"max_open_sources": 3}}))
    out = tmp_path / "out"
    inputs = [str(tmp_path / f"{name}.mp4") for name in sizes]
    assert main(["label", *inputs, "--out", str(out), "--config", str(config), "--no-progress"]) == 0
    manifest = json.loads((out / "vidpipe-manifest.json").read_text())
    assert all(v["state"] == "done" for v in manifest["videos"].values())
    for name, (w, h, n) in sizes.items():
        video = decoded(out / f"{name}.mp4")
        assert len(video) == n and in_order(video, w, h), name

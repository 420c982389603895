"""Label smoothing, segments and the summary, on known label sequences."""

from __future__ import annotations

import itertools
import random

import pytest

from vidpipe.stages.outputs.records import FrameLabel
from vidpipe.stages.outputs.smoothing import LabelSmoother, Segment, SegmentBuilder, SmoothedLabel, summarize

NAMES = {0: "tiger cat", 1: "tabby", 2: "espresso", 3: "cup"}


def frame(i: int, top1: int, fps: float = 25.0, scores: tuple[float, ...] | None = None, t0: float = 0.0) -> FrameLabel:
    top5 = (top1, *[c for c in range(5) if c != top1][:4])
    return FrameLabel("s", i, t0 + i / fps, top5, tuple(NAMES.get(c, f"c{c}") for c in top5), scores, 1.0)


def smooth(labels: list[int], **kwargs: object) -> list[SmoothedLabel]:
    smoother = LabelSmoother(**kwargs)  # type: ignore[arg-type]
    out: list[SmoothedLabel] = []
    for i, label in enumerate(labels):
        out += smoother.push(frame(i, label))
    return out + smoother.flush()


def smoothed(labels: list[int], fps: float = 10.0) -> list[SmoothedLabel]:
    """Already-smoothed labels (segments tests), score 0.9 for label 0 and 0.5 otherwise."""
    return [SmoothedLabel(i, i / fps, c, NAMES[c], 0.9 if c == 0 else 0.5) for i, c in enumerate(labels)]


def segments(labels: list[int], fps: float = 10.0, min_segment_s: float = 0.0, pass_fps: bool = True) -> list[Segment]:
    builder = SegmentBuilder(fps if pass_fps else 0.0, min_segment_s)
    for item in smoothed(labels, fps):
        builder.add(item)
    return builder.finish()


@pytest.mark.parametrize("centered", [True, False])
def test_single_frame_flicker_is_removed(centered: bool) -> None:
    labels = [0] * 40
    labels[10] = labels[25] = 1
    out = smooth(labels, window=15, centered=centered)
    assert [s.index for s in out] == list(range(40))  # every frame once, in order
    assert {s.label for s in out} == {0}
    assert out[0].name == "tiger cat"


def test_alternating_near_tie_does_not_flicker_thanks_to_hysteresis() -> None:
    labels = [0, 1] * 30
    assert len({s.label for s in smooth(labels, window=15)[8:]}) == 1
    flicker = smooth(labels, window=15, hysteresis=0.0)  # without it the majority swaps every frame
    assert len({s.label for s in flicker[8:-8]}) == 2


def test_centered_window_places_a_change_on_time_and_causal_one_late() -> None:
    labels = [0] * 30 + [2] * 30
    centered = [s.label for s in smooth(labels, window=15)]
    first = centered.index(2)
    assert abs(first - 30) <= 1 and set(centered[first:]) == {2}
    causal = [s.label for s in smooth(labels, window=15, centered=False)]
    assert 30 + 6 <= causal.index(2) <= 30 + 9  # a causal majority needs about half the window


def test_stream_shorter_than_the_window_is_flushed_whole() -> None:
    out = smooth([1, 1, 0], window=15)
    assert [s.index for s in out] == [0, 1, 2] and {s.label for s in out} == {1}


def test_score_weighted_vote_prefers_the_consistently_likely_class() -> None:
    smoother = LabelSmoother(window=9)
    out: list[SmoothedLabel] = []
    for i in range(30):  # top-1 alternates, but tiger cat is always far more likely on average
        top1, scores = (1, (0.40, 0.38)) if i % 3 == 0 else (0, (0.80, 0.10))
        f = FrameLabel("s", i, i / 25, (top1, 1 - top1), (NAMES[top1], NAMES[1 - top1]), scores, 1.0)
        out += smoother.push(f)
    out += smoother.flush()
    assert {s.label for s in out} == {0}
    assert 0.6 < out[15].score < 0.7  # window mean probability of tiger cat


def test_segments_boundaries_and_times() -> None:
    segs = segments([0] * 10 + [1] * 5 + [0] * 10)
    assert [(s.name, s.start_frame, s.end_frame, s.frames) for s in segs] == [
        ("tiger cat", 0, 9, 10), ("tabby", 10, 14, 5), ("tiger cat", 15, 24, 10)]
    assert [t for s in segs for t in (s.start_s, s.end_s)] == pytest.approx([0.0, 1.0, 1.0, 1.5, 1.5, 2.5])
    assert segs[0].mean_score == pytest.approx(0.9) and segs[1].mean_score == pytest.approx(0.5)
    assert segs[1].to_json() == {"label": 1, "name": "tabby", "start_s": 1.0, "end_s": 1.5, "start_frame": 10,
                                 "end_frame": 14, "frames": 5, "mean_score": 0.5}


def test_short_blip_between_one_label_joins_both_sides() -> None:
    (seg,) = segments([0] * 10 + [1] * 5 + [0] * 10, min_segment_s=0.6)
    assert (seg.label, seg.start_frame, seg.end_frame, seg.frames) == (0, 0, 24, 25)
    assert (seg.start_s, seg.end_s) == pytest.approx((0.0, 2.5))
    assert seg.mean_score == pytest.approx(0.9)  # the absorbed frames do not dilute the score


def test_short_blip_goes_to_the_longer_neighbour() -> None:
    segs = segments([0] * 10 + [1] * 2 + [2] * 4, min_segment_s=0.3)
    assert [(s.label, s.start_frame, s.end_frame, s.frames) for s in segs] == [(0, 0, 11, 12), (2, 12, 15, 4)]
    assert [t for s in segs for t in (s.start_s, s.end_s)] == pytest.approx([0.0, 1.2, 1.2, 1.6])
    first_blip = segments([1] * 2 + [0] * 10, min_segment_s=0.3)  # no left neighbour: merges right
    assert [(s.label, s.start_frame, s.start_s) for s in first_blip] == [(0, 0, 0.0)]


def test_end_time_without_fps_is_estimated_from_timestamps() -> None:
    segs = segments([0] * 5 + [2] * 5, fps=20.0, pass_fps=False)
    assert segs[-1].end_s == pytest.approx(0.5)
    builder = SegmentBuilder()
    builder.add(SmoothedLabel(0, 3.0, 0, "tiger cat", 1.0))
    (only,) = builder.finish()
    assert (only.start_s, only.end_s, only.frames) == (3.0, 3.0, 1)
    assert summarize([only]) == [("tiger cat", 0.0, 1.0)]  # no duration at all: shares by frames


def test_random_sequences_give_contiguous_segments_that_cover_every_frame() -> None:
    rng = random.Random(7)
    labels: list[int] = []
    while len(labels) < 3000:
        labels += [rng.randrange(4)] * rng.choice([1, 1, 2, 3, 8, 20, 60])
    segs = segments(labels, fps=25.0, min_segment_s=0.5)
    assert segs[0].start_frame == 0 and segs[-1].end_frame == len(labels) - 1
    assert sum(s.frames for s in segs) == len(labels)
    for a, b in itertools.pairwise(segs):
        assert a.end_frame + 1 == b.start_frame and a.end_s == b.start_s and a.label != b.label
    assert all(s.duration_s >= 0.5 for s in segs)
    summary = summarize(segs)
    assert sum(s.duration_s for s in summary) == pytest.approx(len(labels) / 25)
    assert sum(s.share for s in summary) == pytest.approx(1.0)
    assert [s.duration_s for s in summary] == sorted((s.duration_s for s in summary), reverse=True)


def test_summary_adds_durations_per_name() -> None:
    segs = segments([0] * 10 + [1] * 30 + [0] * 20, fps=10.0)
    assert summarize(segs) == [("tabby", pytest.approx(3.0), pytest.approx(0.5)),
                               ("tiger cat", pytest.approx(3.0), pytest.approx(0.5))]
    assert summarize(segments([0] * 10 + [1] * 5 + [0] * 5))[0][:2] == ("tiger cat", pytest.approx(1.5))
    assert summarize([]) == [] and SegmentBuilder().finish() == []


def test_smoother_to_segments_end_to_end() -> None:
    labels = [0] * 50 + [2] * 50
    for i in (5, 20, 70):  # flicker
        labels[i] = 1
    builder = SegmentBuilder(fps=25.0, min_segment_s=0.5)
    smoother = LabelSmoother(window=15)
    for i, label in enumerate(labels):
        for item in smoother.push(frame(i, label)):
            builder.add(item)
    for item in smoother.flush():
        builder.add(item)
    segs = builder.finish()
    assert [s.name for s in segs] == ["tiger cat", "espresso"]
    assert abs(segs[1].start_frame - 50) <= 1 and segs[1].end_s == pytest.approx(4.0)

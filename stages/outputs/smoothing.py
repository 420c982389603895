"""Temporal smoothing of per-frame labels, label segments, and the per-video summary.

    FrameLabel --LabelSmoother--> SmoothedLabel --SegmentBuilder--> [Segment] --summarize--> [LabelShare]

Everything here is plain Python fed one frame at a time, in frame order, per stream.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

from vidpipe.stages.outputs.records import FrameLabel


@dataclass(frozen=True)
class SmoothedLabel:
    """The smoothed top-1 of one frame. `score`: mean probability of `label` over the window when
    the backend gives scores, else the share of window frames whose top-1 it was."""

    index: int
    timestamp_s: float
    label: int
    name: str
    score: float


class LabelSmoother:
    """Sliding-window vote over the last `window` frames, with hysteresis.

    Vote: with scores, the window's mean of each class's top-5 probability (averaging the
    classifier's output over time); without scores (alveo gives ids only), a majority vote of
    the top-1. Hysteresis: the current label is kept until a challenger leads it by
    `hysteresis` x `window` votes, so two near-equal classes do not flicker.

    `centered=True` (batch files) judges frame i on frames i-w/2..i+w/2, so label changes are
    not delayed; frames come out `lag` frames late and `flush()` returns the rest at the end.
    `centered=False` (live) is causal: push() returns the frame it was given.
    """

    def __init__(self, window: int = 15, *, centered: bool = True, hysteresis: float = 0.1) -> None:
        if window < 1:
            raise ValueError(f"smoothing window must be >= 1, got {window}")
        self.window = window
        self.lag = window // 2 if centered else 0
        self.hysteresis = hysteresis
        self._frames: deque[tuple[int, dict[int, float]]] = deque()  # (position, votes), the window
        self._pending: deque[tuple[int, FrameLabel]] = deque()  # (position, frame) not emitted yet
        self._names: dict[int, str] = {}
        self._pos = 0
        self._current: int | None = None

    def push(self, frame: FrameLabel) -> list[SmoothedLabel]:
        """Adds the next frame; returns the frames whose smoothed label is now known (0 or 1)."""
        self._names.update(zip(frame.top5, frame.names, strict=False))
        self._frames.append((self._pos, _votes(frame)))
        if len(self._frames) > self.window:
            self._frames.popleft()
        self._pending.append((self._pos, frame))
        self._pos += 1
        if len(self._pending) > self.lag:
            return [self._emit(self._pending.popleft()[1])]
        return []

    def flush(self) -> list[SmoothedLabel]:
        """End of stream: the frames still waiting for future context, judged on what there is."""
        out = []
        while self._pending:
            pos, frame = self._pending.popleft()
            oldest = pos - (self.window - 1 - self.lag)  # keep the window centred on `pos`
            while self._frames and self._frames[0][0] < oldest:
                self._frames.popleft()
            out.append(self._emit(frame))
        return out

    def _emit(self, frame: FrameLabel) -> SmoothedLabel:
        totals: dict[int, float] = {}
        for _, votes in self._frames:
            for cls, weight in votes.items():
                totals[cls] = totals.get(cls, 0.0) + weight
        best = min(totals, key=lambda c: (-totals[c], c))  # ties: lowest id, deterministic
        current = self._current
        margin = self.hysteresis * self.window  # nominal size: the thin windows at the ends need more evidence
        if current is None or totals[best] > totals.get(current, 0.0) + margin:
            current = best
        self._current = current
        score = totals.get(current, 0.0) / len(self._frames)
        name = self._names.get(current, f"class {current}")
        return SmoothedLabel(frame.index, frame.timestamp_s, current, name, score)


def _votes(frame: FrameLabel) -> dict[int, float]:
    if frame.scores is None:
        return {frame.top5[0]: 1.0}
    return {cls: float(s) for cls, s in zip(frame.top5, frame.scores, strict=False)}


@dataclass(frozen=True)
class Segment:
    """A run of frames with one smoothed label. `end_frame` is inclusive; `end_s` is the start
    of the next segment (or the last frame's time + one frame duration)."""

    label: int
    name: str
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    frames: int
    mean_score: float

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "name": self.name, "start_s": round(self.start_s, 6),
                "end_s": round(self.end_s, 6), "start_frame": self.start_frame, "end_frame": self.end_frame,
                "frames": self.frames, "mean_score": round(self.mean_score, 5)}


@dataclass
class _Run:
    label: int
    name: str
    start_s: float
    start_frame: int
    end_frame: int
    frames: int = 1
    score_sum: float = 0.0  # over the frames whose own smoothed label is `label`
    scored: int = 0
    prev: int = -1  # neighbours while merging (indices into the run list, -1: none)
    next: int = -1
    alive: bool = True
    version: int = 0


class SegmentBuilder:
    """Collects smoothed labels into runs; `finish()` merges runs shorter than `min_segment_s`
    into a neighbour (the shortest first; into the longer neighbour, or both when they share a
    label) and returns the segments. `fps` (0: estimated from the timestamps) gives the last
    frame's duration. Memory: one small record per label change, not per frame."""

    def __init__(self, fps: float | Fraction = 0.0, min_segment_s: float = 0.0) -> None:
        self.fps = float(fps)
        self.min_segment_s = min_segment_s
        self._runs: list[_Run] = []
        self._first_s: float | None = None
        self._last_s = 0.0
        self._count = 0

    def add(self, item: SmoothedLabel) -> None:
        run = self._runs[-1] if self._runs else None
        if run is not None and run.label == item.label:
            run.end_frame, run.frames = item.index, run.frames + 1
        else:
            run = _Run(item.label, item.name, item.timestamp_s, item.index, item.index, frames=1)
            self._runs.append(run)
        run.score_sum += item.score
        run.scored += 1
        self._first_s = item.timestamp_s if self._first_s is None else self._first_s
        self._last_s = item.timestamp_s
        self._count += 1

    def end_time(self) -> float:
        """The end of the last frame: its timestamp plus one frame duration."""
        if self.fps > 0:
            return self._last_s + 1.0 / self.fps
        if self._count > 1 and self._first_s is not None:
            return self._last_s + (self._last_s - self._first_s) / (self._count - 1)
        return self._last_s

    def finish(self) -> list[Segment]:
        runs = self._runs
        end = self.end_time()
        for i, run in enumerate(runs):
            run.prev, run.next = i - 1, (i + 1 if i + 1 < len(runs) else -1)
        if self.min_segment_s > 0:
            self._merge_short(end)
        segments = []
        for run in runs:
            if run.alive:
                stop = runs[run.next].start_s if run.next >= 0 else end
                segments.append(Segment(run.label, run.name, run.start_s, stop, run.start_frame, run.end_frame,
                                        run.frames, run.score_sum / run.scored if run.scored else 0.0))
        return segments

    def _duration(self, i: int, end: float) -> float:
        run = self._runs[i]
        return (self._runs[run.next].start_s if run.next >= 0 else end) - run.start_s

    def _merge_short(self, end: float) -> None:
        runs = self._runs
        heap = [(self._duration(i, end), i, 0) for i in range(len(runs))]
        heapq.heapify(heap)
        alive = len(runs)
        while heap and alive > 1:
            duration, i, version = heapq.heappop(heap)
            run = runs[i]
            if not run.alive or version != run.version:
                continue  # stale entry: the run grew or was absorbed since
            if duration >= self.min_segment_s:
                break
            target, alive = self._absorb(i, end), alive - 1
            # A blip between two runs of one label (A x A) joins them into one segment.
            nxt = runs[target].next
            if nxt >= 0 and runs[nxt].label == runs[target].label:
                self._absorb(nxt, end, into=target)
                alive -= 1
            prv = runs[target].prev
            if prv >= 0 and runs[prv].label == runs[target].label:
                target, alive = self._absorb(target, end, into=prv), alive - 1
            runs[target].version += 1
            heapq.heappush(heap, (self._duration(target, end), target, runs[target].version))

    def _absorb(self, i: int, end: float, into: int | None = None) -> int:
        """Merges run i into its longer neighbour (or `into`); returns the index of the survivor."""
        runs = self._runs
        run = runs[i]
        if into is None:
            prev_d = self._duration(run.prev, end) if run.prev >= 0 else -1.0
            next_d = self._duration(run.next, end) if run.next >= 0 else -1.0
            into = run.prev if prev_d >= next_d else run.next
        target = runs[into]
        if into == run.next:  # the next run starts earlier now
            target.start_s, target.start_frame = run.start_s, run.start_frame
        else:
            target.end_frame = run.end_frame
        target.frames += run.frames
        if run.label == target.label:
            target.score_sum, target.scored = target.score_sum + run.score_sum, target.scored + run.scored
        run.alive = False
        if run.prev >= 0:
            runs[run.prev].next = run.next
        if run.next >= 0:
            runs[run.next].prev = run.prev
        return into


class LabelShare(NamedTuple):
    name: str
    duration_s: float
    share: float  # of the total duration of all segments


def summarize(segments: list[Segment]) -> list[LabelShare]:
    """Time per label name (the longest first). Shares add up to 1 (by frames if no durations)."""
    durations: dict[str, float] = {}
    frames: dict[str, int] = {}
    for seg in segments:
        durations[seg.name] = durations.get(seg.name, 0.0) + seg.duration_s
        frames[seg.name] = frames.get(seg.name, 0) + seg.frames
    total = sum(durations.values())
    total_frames = sum(frames.values())
    shares = [LabelShare(name, d, d / total if total > 0 else frames[name] / total_frames)
              for name, d in durations.items()]
    return sorted(shares, key=lambda s: (-s.duration_s, -s.share, s.name))

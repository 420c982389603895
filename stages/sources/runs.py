"""Every core on one file's decode: a long file cut into runs that several decode workers decode at
once (stages.parts says how the stream is put back together).

    items = split_files(infos, workers, min_frames)   # VideoInfo (whole file) or VideoRun, queue order

When a cut pays: the job keeps no frame after its labels (no annotated video: one encoder per file
is slower than one decoder, and the sink would hold the frames of later runs until the earlier
ones are written), there are fewer files than decode workers (each file gets its share of them;
with more files only the last one is cut, so the workers that finish first help with it), and
each run has at least `min_frames` frames, and the longest run costs at most WORTH of the file
(the job also cuts nothing on one core).

Where: the file's index comes from a PyAV demux (packets, no decoding): presentation times in
order and the keyframes. A run starts anywhere: its worker seeks to the keyframe at or before the
start (OpenCV's CAP_PROP_POS_FRAMES: seek back, decode forward) and drops the frames before it;
dropping costs a decode without the colour conversion, so the cuts balance (frames + DROP_COST x
frames dropped) over the runs. Frame numbers come from the index, never from OpenCV's own count
(inexact on VFR files): each frame's CAP_PROP_POS_MSEC is exactly the time the index computes for
it, (pts - start_time) x time_base x 1000. Leading B-frames of an open GOP come out before their
keyframe's index and are dropped (the run before decodes them); a file whose packets lack a pts,
repeat one, or are marked to be discarded (an edit list), or whose first frames OpenCV times
otherwise, is not cut. A frame the decoder does not give in a run (a corrupt packet) fails the
video in one line (one decoder would have numbered the frames after it one lower).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2

from vidpipe.pipeline.errors import SourceError

if TYPE_CHECKING:  # files.py decodes runs: it imports this module
    from vidpipe.stages.sources.files import VideoInfo

log = logging.getLogger(__name__)

WORTH = 0.8  # cut only if the longest run costs at most this share of decoding the file whole
DROP_COST = 0.8  # a frame decoded and dropped, in frames labeled: grab() 5.3 ms of CPU, retrieve() 1.3 (1080p)


@dataclass(frozen=True)
class FrameIndex:
    times_ms: tuple[float, ...]  # presentation order: CAP_PROP_POS_MSEC of each frame
    keyframes: tuple[int, ...]  # presentation indices


@dataclass(frozen=True)
class VideoRun:
    """Frames start..end-1 of a file, part `part` of `parts`; `times_ms` from the keyframe at or
    before `start` (index `first`) to end-1."""

    info: VideoInfo
    part: int
    parts: int
    start: int
    end: int
    first: int
    times_ms: tuple[float, ...]

    @property
    def cost(self) -> float:
        """In frames decoded: its own, and those before its start it decodes and drops."""
        return _cost((self.first,), self.start, self.end)

    def index_of(self, ms: float) -> int | None:
        """The frame's presentation index; -1 before this run's table, `end` after it, None: a time
        the file's index does not have."""
        i = bisect.bisect_left(self.times_ms, ms)
        if i < len(self.times_ms) and self.times_ms[i] == ms:
            return self.first + i
        if i == 0:
            return -1
        return self.end if i == len(self.times_ms) else None


def read_index(path: str) -> FrameIndex | None:
    """The file's frame index (see the module docstring); None if it cannot be cut."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            start, base = stream.start_time, float(stream.time_base or 0)
            packets = [(p.pts, p.is_keyframe, p.is_discard) for p in container.demux(stream) if p.size]
    except (av.FFmpegError, OSError, IndexError):
        return None
    pts = sorted(p for p, _, _ in packets if p is not None)
    if start is None or not base or not len(pts) == len(packets) == len(set(pts)) or any(d for *_, d in packets):
        return None
    order = {p: i for i, p in enumerate(pts)}
    keys = tuple(sorted(order[p] for p, key, _ in packets if key and p is not None))
    if not keys or keys[0] != 0:
        return None
    index = FrameIndex(tuple(float(p - start) * base * 1000 for p in pts), keys)
    return index if _agrees(path, index) else None


def _agrees(path: str, index: FrameIndex) -> bool:
    """Whether OpenCV tells the first frames' times as the index does (its timestamps may come
    from elsewhere than the packets' pts in some containers: such a file is not cut)."""
    from vidpipe.stages.sources.files import open_capture  # files.py imports this module

    try:
        cap = open_capture(path, threads=1)
    except SourceError:
        return False
    try:
        return all(cap.grab() and cap.get(cv2.CAP_PROP_POS_MSEC) == ms for ms in index.times_ms[:3])
    finally:
        cap.release()


def cuts(index: FrameIndex, parts: int, min_frames: int = 1) -> list[tuple[int, int]]:
    """[start, end) runs of at least `min_frames` frames, at most `parts`, whose largest cost
    (frames + DROP_COST x the frames dropped before its start) is smallest: a binary search on
    that cost, runs cut greedily (each as long as the cost allows, leaving room for the next)."""
    total = len(index.times_ms)
    lo, hi = total / parts, float(total)
    for _ in range(40):
        mid = (lo + hi) / 2
        runs = _greedy(index.keyframes, total, mid, min_frames)
        if len(runs) <= parts and max(_cost(index.keyframes, *run) for run in runs) <= mid:
            hi = mid
        else:
            lo = mid
    return _greedy(index.keyframes, total, hi, min_frames)


def _greedy(keys: tuple[int, ...], total: int, cost: float, min_frames: int) -> list[tuple[int, int]]:
    runs, start = [], 0
    while start < total:
        end = int(start + cost - DROP_COST * (start - _keyframe_before(keys, start)))
        end = total if end >= total or start + min_frames > total - min_frames else \
            max(start + min_frames, min(end, total - min_frames))
        runs.append((start, end))
        start = end
    return runs


def _cost(keys: tuple[int, ...], start: int, end: int) -> float:
    return end - start + DROP_COST * (start - _keyframe_before(keys, start))


def _keyframe_before(keys: tuple[int, ...], frame: int) -> int:
    return keys[bisect.bisect_right(keys, frame) - 1]


def runs_of(info: VideoInfo, index: FrameIndex, parts: int, min_frames: int = 1) -> list[VideoRun]:
    found = cuts(index, parts, min_frames)
    out = []
    for part, (start, end) in enumerate(found):
        first = _keyframe_before(index.keyframes, start)
        out.append(VideoRun(info, part, len(found), start, end, first, index.times_ms[first:end]))
    return out


def split_files(infos: list[VideoInfo], workers: int, min_frames: int) -> list[VideoInfo | VideoRun]:
    """The job's files in queue order, those that pay cut into runs (see the module docstring)."""
    if min_frames <= 0 or workers < 2 or not infos:
        return list(infos)
    shares = [workers // len(infos) + (i < workers % len(infos)) for i in range(len(infos))] \
        if len(infos) < workers else [1] * (len(infos) - 1) + [workers]
    out: list[VideoInfo | VideoRun] = []
    for info, share in zip(infos, shares, strict=True):
        runs = _runs_that_pay(info, share, min_frames)
        out.extend(runs or [info])
    return out


def _runs_that_pay(info: VideoInfo, parts: int, min_frames: int) -> list[VideoRun]:
    """`info` cut into at most `parts` runs, or [] where that would not pay."""
    parts = min(parts, info.frame_count // min_frames)  # the header's count: no index read for short files
    index = read_index(info.path) if parts > 1 else None
    if index is None or min(parts, len(index.times_ms) // min_frames) < 2:
        return []
    runs = runs_of(info, index, min(parts, len(index.times_ms) // min_frames), min_frames)
    if len(runs) < 2 or max(run.cost for run in runs) > WORTH * len(index.times_ms):  # long GOPs: no gain
        return []
    log.debug("%s: decoded in %d runs: %s", info.stream, len(runs), [(r.start, r.end) for r in runs])
    return runs


def grabbed(cap: cv2.VideoCapture, run: VideoRun) -> Iterator[int | None]:
    """Grabs frames for `run`: from a frame at or before run.start until the run's end, yielding
    each one's index (VideoRun.index_of) once it is grabbed (retrieve() it or not)."""
    at = _seek(cap, run)
    while at is not None and at < run.end:
        yield at
        at = run.index_of(cap.get(cv2.CAP_PROP_POS_MSEC)) if cap.grab() else run.end
    if at is None:
        yield None


def _seek(cap: cv2.VideoCapture, run: VideoRun) -> int | None:
    """Grabs a frame at or before run.start (OpenCV's frame seek counts at the nominal rate: on a
    VFR file it may land late, then it seeks further back) and returns its index."""
    back = 0
    while True:
        cap.set(cv2.CAP_PROP_POS_FRAMES, max(0, run.start - back))
        at = run.index_of(cap.get(cv2.CAP_PROP_POS_MSEC)) if cap.grab() else run.end
        if (at is not None and at <= run.start) or run.start - back <= 0:
            return at
        back = max(16, 2 * back)

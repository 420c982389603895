"""A file decoded in parts: several decode workers at once, each on its own run of frames (whole
GOPs, or from a keyframe on, the frames before the run's start decoded and dropped), numbered as
the whole file (seq = the frame's presentation index, so the sink's reorder is the file's order).

    part 0's worker: StreamStart, FrameRefs start..end-1, PartEnd(part 0)
    part k's worker:             FrameRefs start..end-1, PartEnd(part k)
    sink: the stream's StreamEnd = combine(every PartEnd), once all have come

A part that decodes fewer frames than planned (a truncated or corrupt file) ends the stream
there, as one decoder would have: the frames after the gap are not written, and the video fails
with today's one line (`decoded N of M frames: ...`); a part's error fails the video with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidpipe.stages.descriptors import StreamEnd


@dataclass(frozen=True)
class PartEnd:
    """What one part's decode worker did: `frames` frames start..start+frames-1 sent."""

    stream: str
    part: int
    parts: int
    start: int  # the part's first frame (presentation index)
    planned: int  # frames it was to send
    frames: int  # frames it sent, from `start` on without a gap
    error: str = ""  # one line (without the file's name), "" if none
    damaged: tuple[int, ...] = ()  # frames the decoder reported errors in (stages.sources.damage)
    header_frames: int = 0  # the container's frame count (the truncation check, as for one decoder)
    max_damaged_share: float = 0.5  # more damaged frames than this share: the video fails


@dataclass(frozen=True)
class Combined:
    """The stream's end, and its one-line damage warning ("" if none)."""

    end: StreamEnd
    warning: str = ""


def combine(ends: list[PartEnd]) -> Combined:
    """The stream's StreamEnd from every part's end (see the module docstring)."""
    ends = sorted(ends, key=lambda e: e.part)
    first = ends[0]
    frames, error, gap = 0, "", False
    for end in ends:
        frames = end.start + end.frames
        if end.error or end.frames < end.planned:
            error, gap = end.error, end is not ends[-1]
            break
    damaged = sorted({f for end in ends for f in end.damaged if f < frames})
    error, warning = verdict(frames, error, first.header_frames, damaged, first.max_damaged_share, gap,
                             expected=ends[-1].start + ends[-1].planned)
    return Combined(StreamEnd(first.stream, frames, error), warning)


def verdict(frames: int, error: str, header_frames: int, damaged: list[int], max_damaged_share: float,
            gap: bool = False, expected: int = 0) -> tuple[str, str]:
    """How a decoded file ended, by one decoder or in parts: (its error, its damage warning), one of
    them "" at least. `frames` were sent without a gap (`gap`: a part ended early, more came after);
    `header_frames`: the container's count (0: unknown), else `expected` names what was planned."""
    if not error and frames == 0:
        error = "no frame could be decoded (corrupt file?)"
    elif not error and (gap or frames < header_frames - 1):
        error = f"decoded {frames} of {header_frames or expected} frames: file truncated or its frame count is wrong"
    said = describe_damaged(damaged)
    if said and not error and len(damaged) > max_damaged_share * max(frames, 1):
        error = f"{said}: more than {max_damaged_share:.0%} of its frames (preprocess.max_damaged_share)"
    return error, "" if error else said


def describe_damaged(frames: list[int]) -> str:
    """`N frames decoded with errors, frames A..B`, or "" (frames: sorted)."""
    if not frames:
        return ""
    n = len(frames)
    where = f"frame {frames[0]}" if n == 1 else f"frames {frames[0]}..{frames[-1]}"
    return f"{n} frame{'s' if n > 1 else ''} decoded with errors, {where}"

"""The end of a file decoded in parts, put together from the parts' ends (stages.parts)."""

from __future__ import annotations

from vidpipe.stages.parts import PartEnd, combine


def part(part: int, start: int, planned: int, frames: int, error: str = "", damaged: tuple[int, ...] = (),
         header: int = 300) -> PartEnd:
    return PartEnd("v", part, 3, start, planned, frames, error, damaged, header, 0.5)


def test_whole_parts_make_the_whole_stream_in_any_order_of_arrival() -> None:
    got = combine([part(2, 200, 100, 100), part(0, 0, 100, 100, damaged=(5, 6)), part(1, 100, 100, 100)])
    assert got.end.frames == 300 and got.end.error == ""
    assert got.warning == "2 frames decoded with errors, frames 5..6"


def test_a_short_middle_part_ends_the_stream_at_its_gap_as_a_truncation() -> None:
    got = combine([part(0, 0, 100, 100), part(1, 100, 100, 40, damaged=(120, 250)), part(2, 200, 100, 100)])
    assert got.end.frames == 140  # the frames after the gap cannot be written in order
    assert got.end.error == "decoded 140 of 300 frames: file truncated or its frame count is wrong"
    unknown = combine([part(0, 0, 100, 100, header=0), part(1, 100, 100, 40, header=0), part(2, 200, 100, 100)])
    assert unknown.end.error == "decoded 140 of 300 frames: file truncated or its frame count is wrong"


def test_a_parts_error_fails_the_video_and_too_much_damage_too() -> None:
    failed = combine([part(0, 0, 100, 100), part(1, 100, 100, 7, "decode error after 107 frames"),
                      part(2, 200, 100, 100)])
    assert (failed.end.frames, failed.end.error, failed.warning) == (107, "decode error after 107 frames", "")
    last_short_by_one = combine([part(0, 0, 100, 100), part(1, 100, 100, 100), part(2, 200, 100, 99)])
    assert (last_short_by_one.end.frames, last_short_by_one.end.error) == (299, "")  # as one decoder: tolerated
    damaged = combine([part(0, 0, 100, 100, damaged=tuple(range(100))), part(1, 100, 100, 100, damaged=(150,) * 60),
                       part(2, 200, 100, 100, damaged=tuple(range(200, 260)))])
    assert damaged.end.error.startswith("161 frames decoded with errors, frames 0..259: more than 50%")

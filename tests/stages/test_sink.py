"""The sink: reorders per stream, makes outputs once labels are known, reports progress and done;
puts a file decoded in parts back together."""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np

from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.testing import ListChannel, run_inline
from vidpipe.stages.descriptors import FrameRef, LabelInfo, Result, StreamEnd, StreamStart
from vidpipe.stages.events import OutputSummary, Progress, SourceProblem, StreamDone
from vidpipe.stages.parts import PartEnd
from vidpipe.stages.sink import SinkParams, SinkStage


class ListOutputs:
    """Records what the sink writes (a test's TestingSink)."""

    def __init__(self, written: list[tuple[str, int, int]]) -> None:
        self.written = written

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> None:
        self.written.append((result.frame.stream, result.frame.seq, int(frame[0, 0, 0]) if frame.size else -2))

    def drop(self, result: Result) -> None:
        self.written.append((result.frame.stream, result.frame.seq, -1))

    def finish(self, end: StreamEnd | None) -> OutputSummary:
        return OutputSummary((("cut" if end is None else "whole", 1.0),))


class ListOutputsFactory:
    def __init__(self) -> None:
        self.written: list[tuple[str, int, int]] = []
        self.other: list[Any] = []

    def __call__(self, start: StreamStart, labels: LabelInfo, lane: Any = None) -> ListOutputs:
        return ListOutputs(self.written)

    def on_item(self, item: Any) -> None:
        self.other.append(item)

    def close(self) -> None:
        self.other.append("closed")


def test_results_leave_in_order_and_every_slot_comes_back() -> None:
    ring = SlotRing(multiprocessing.get_context("spawn"), 8, 3, "frames")
    try:
        results = []
        for seq in (2, 0, 3, 1):  # out of order, as several workers and batches deliver them
            slot = ring.acquire(0)
            assert slot is not None
            ring.view(slot, (1, 1, 3))[:] = seq
            results.append(Result(FrameRef("s", seq, slot, 1, 1, seq / 25, 0.0), (1, 2, 3, 4, 5), None, 0, 0, 0))
        outputs = ListOutputsFactory()
        items = [results[0], StreamStart("s", "s.mp4", 1, 1, 25.0, 4, False), results[1],
                 LabelInfo("cpu", ("a",) * 1000, True), *results[2:], StreamEnd("s", 4), "status"]
        got = run_inline(SinkStage, SinkParams(ring, outputs), items)
        assert outputs.written == [("s", i, i) for i in range(4)]  # in order, each with its own pixels
        assert ring.free_count() == 8
        done = [e for e in got.events if isinstance(e, StreamDone)]
        assert len(done) == 1 and done[0].frames == 4 and done[0].summary.top == (("whole", 1.0),)
        assert [e.done for e in got.events if isinstance(e, Progress)][-1] == 4
        assert outputs.other == ["status", "closed"]
    finally:
        ring.close()
        ring.unlink()


def test_a_stream_still_open_at_the_end_is_finished_as_cut_short() -> None:
    ring = SlotRing(multiprocessing.get_context("spawn"), 2, 3, "frames")
    try:
        slot = ring.acquire(0)
        assert slot is not None
        first = Result(FrameRef("s", 0, slot, 1, 1, 0.0, 0.0), (0,) * 5, None, 0, 0, 0)
        items = [StreamStart("s", "s.mp4", 1, 1, 25.0, 10, False), LabelInfo("sim", ("x",) * 1000, False), first]
        got = run_inline(SinkStage, SinkParams(ring, ListOutputsFactory()), items)
        done = [e for e in got.events if isinstance(e, StreamDone)]
        assert done[0].error == "cut short: the pipeline stopped" and done[0].summary.top == (("cut", 1.0),)
        assert ring.free_count() == 2
    finally:
        ring.close()
        ring.unlink()


class FullDiskOutputs(ListOutputs):
    """Writes fail after two frames, as on a full disk."""

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> None:
        if len(self.written) >= 2:
            raise OSError(28, "No space left on device", f"/out/{result.frame.stream}.jsonl.part")
        super().write(result, frame, t_sink)


class FullDiskFactory(ListOutputsFactory):
    def __call__(self, start: StreamStart, labels: LabelInfo, lane: Any = None) -> ListOutputs:
        return FullDiskOutputs(self.written) if start.stream == "full" else ListOutputs(self.written)


def test_an_output_that_cannot_be_written_fails_its_stream_only() -> None:
    ring = SlotRing(multiprocessing.get_context("spawn"), 16, 3, "frames")
    try:
        items: list[Any] = [LabelInfo("cpu", ("a",) * 1000, True)]
        for stream in ("full", "fine"):
            items.append(StreamStart(stream, f"{stream}.mp4", 1, 1, 25.0, 5, False))
            for seq in range(5):
                slot = ring.acquire(0)
                assert slot is not None
                items.append(Result(FrameRef(stream, seq, slot, 1, 1, 0.0, 0.0), (0,) * 5, None, 0, 0, 0))
            items.append(StreamEnd(stream, 5))
        got = run_inline(SinkStage, SinkParams(ring, FullDiskFactory()), items)
        problems = [e for e in got.events if isinstance(e, SourceProblem)]
        expected = "full.mp4: cannot write /out/full.jsonl.part (No space left on device)"
        assert [p.message for p in problems] == [expected]
        done = {e.stream: e for e in got.events if isinstance(e, StreamDone)}
        assert done["full"].error == problems[0].message and done["full"].frames == 2
        assert done["fine"].error == "" and done["fine"].frames == 5
        assert ring.free_count() == 16  # the failed stream's frames are released all the same
    finally:
        ring.close()
        ring.unlink()


class LaneOutputs(ListOutputs):
    """Hands every frame down its lane (as the label outputs do with an encoder process)."""

    def __init__(self, written: list[tuple[str, int, int]], lane: Any) -> None:
        super().__init__(written)
        self.lane = lane

    def write(self, result: Result, frame: np.ndarray, t_sink: float) -> bool:
        super().write(result, frame, t_sink)
        self.lane.send(result.frame)
        return True  # the slot went with it


class LaneFactory(ListOutputsFactory):
    def __call__(self, start: StreamStart, labels: LabelInfo, lane: Any = None) -> ListOutputs:
        assert lane is not None
        return LaneOutputs(self.written, lane)


def test_streams_get_the_least_busy_lane_and_their_done_goes_down_it() -> None:
    ring = SlotRing(multiprocessing.get_context("spawn"), 8, 3, "frames")
    lanes = (ListChannel("encode-in-0"), ListChannel("encode-in-1"))
    try:
        items: list[Any] = [LabelInfo("sim", ("x",) * 1000, False)]
        for name in ("a", "b"):
            items.append(StreamStart(name, f"{name}.mp4", 1, 1, 25.0, 2, False))
            for seq in (1, 0):
                slot = ring.acquire(0)
                assert slot is not None
                items.append(Result(FrameRef(name, seq, slot, 1, 1, 0.0, 0.0), (0,) * 5, None, 0, 0, 0))
        items += [StreamEnd("a", 2), StreamEnd("b", 2)]
        got = run_inline(SinkStage, SinkParams(ring, LaneFactory(), lanes=lanes), items)
        sent = [[x for batch in lane.sent for x in batch] for lane in lanes]
        for name, lane_items in zip("ab", sent, strict=True):  # one stream per lane, in order, then its done
            assert [x.seq for x in lane_items[:-1]] == [0, 1] and {x.stream for x in lane_items[:-1]} == {name}
            assert isinstance(lane_items[-1], StreamDone) and lane_items[-1].stream == name
        assert not [e for e in got.events if isinstance(e, StreamDone)]  # reported at the lane's end
        assert ring.free_count() == 4  # the handed-on slots are the lane's to release
    finally:
        ring.close()
        ring.unlink()


class LabelsOnlyFactory(ListOutputsFactory):
    keeps_pixels = False  # no output reads a frame: slots come back when the results do


def test_a_file_in_parts_is_written_in_order_up_to_its_first_gap_and_ends_once() -> None:
    ring = SlotRing(multiprocessing.get_context("spawn"), 8, 3, "frames")
    try:
        def result(seq: int) -> Result:
            slot = ring.acquire(0)
            assert slot is not None
            return Result(FrameRef("s", seq, slot, 1, 1, seq / 25, 0.0), (1, 2, 3, 4, 5), None, 0, 0, 0)

        later = [result(seq) for seq in (4, 5, 6)]  # part 2: arrives first, is held, holds no slot
        assert ring.free_count() == 5
        outputs = LabelsOnlyFactory()
        items = [*later, PartEnd("s", 2, 3, 4, 3, 3), LabelInfo("cpu", ("a",) * 1000, True),
                 StreamStart("s", "s.mp4", 1, 1, 25.0, 7, False), result(0), result(1),
                 PartEnd("s", 1, 3, 2, 2, 1, header_frames=7),  # part 1 decoded 1 of its 2 frames
                 result(2), PartEnd("s", 0, 3, 0, 2, 2, header_frames=7)]
        got = run_inline(SinkStage, SinkParams(ring, outputs), items)
        assert outputs.written == [("s", seq, -2) for seq in (0, 1, 2)]  # no pixels; 3 is missing: 4.. cannot follow
        assert ring.free_count() == 8
        done = [e for e in got.events if isinstance(e, StreamDone)]
        assert len(done) == 1 and done[0].frames == 3
        assert done[0].error == "decoded 3 of 7 frames: file truncated or its frame count is wrong"
        assert [e.message for e in got.events if isinstance(e, SourceProblem)] == [f"s.mp4: {done[0].error}"]
    finally:
        ring.close()
        ring.unlink()

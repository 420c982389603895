"""Placement of live streams on Ray nodes by capacity (pure functions, no Ray)."""

from __future__ import annotations

from vidpipe.stages.jobs.placement import Demand, Load, NodeRoom, load_of, most_room, refusal, room_after, spread

CAM = Demand("cam", 640, 480, 25)  # 7.7 Mpixel/s, 25 frames/s of the card


def nodes(*rooms: tuple[str, float, float, int]) -> list[NodeRoom]:
    return [NodeRoom(name, card, pixels, cap) for name, card, pixels, cap in rooms]


def test_equal_nodes_share_equal_streams_evenly() -> None:
    two = nodes(("a", 1000, 100e6, 0), ("b", 1000, 100e6, 0))
    placed, refused = spread([Demand(f"cam{i}", 640, 480, 25) for i in range(6)], two, {})
    assert not refused
    assert sorted(placed.values()) == ["a", "a", "a", "b", "b", "b"]


def test_a_bigger_node_takes_more_streams() -> None:
    big_small = nodes(("big", 2000, 200e6, 0), ("small", 500, 50e6, 0))
    placed, _ = spread([Demand(f"cam{i}", 640, 480, 25) for i in range(10)], big_small, {})
    on_big = sum(node == "big" for node in placed.values())
    assert on_big == 8  # 4:1 budgets: the tightest shares stay level


def test_the_tightest_budget_decides() -> None:
    # the same cards; node a's CPUs are nearly full with what it runs
    two = nodes(("a", 1000, 10e6, 0), ("b", 1000, 100e6, 0))
    assert most_room(CAM, two, {"a": Load(25, 1e6, 1)}) == "b"
    assert room_after(two[0], Load(25, 9e6, 1), CAM) is None  # 16.7 Mpixel/s > 10


def test_the_stream_cap_and_the_card_refuse_in_one_line() -> None:
    capped = nodes(("a", 1000, 100e6, 2))
    assert most_room(CAM, capped, {"a": load_of([CAM, CAM])}) is None
    line = refusal(CAM, capped, {"a": load_of([CAM, CAM])})
    assert line == "cam (640x480 at 25 fps) fits on no node: a has 2 streams (cluster.max_streams_per_node)"
    slow_card = nodes(("a", 30, 100e6, 0))
    assert most_room(CAM, slow_card, {"a": load_of([Demand("x", 64, 64, 10)])}) is None
    assert "a's card labels 10 of 30 fps" in refusal(CAM, slow_card, {"a": load_of([Demand("x", 64, 64, 10)])})
    assert refusal(CAM, [], {}).endswith("fits on no node: no node is ready")


def test_largest_first_and_what_fits_nowhere_is_returned() -> None:
    one = nodes(("a", 1000, 10e6, 0))
    small, huge = Demand("small", 320, 240, 10), Demand("huge", 3840, 2160, 30)
    placed, refused = spread([small, huge], one, {})
    assert placed == {"small": "a"} and refused == [huge]


def test_ties_go_to_fewer_streams_then_by_name() -> None:
    two = nodes(("b", 1000, 100e6, 0), ("a", 1000, 100e6, 0))
    assert most_room(CAM, two, {}) == "a"
    tiny = Demand("tiny", 1, 1, 0)  # takes nothing: the stream count decides
    assert most_room(tiny, two, {"a": Load(0, 0, 2)}) == "b"

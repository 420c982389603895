"""The live sink skips frames lost in a crash (counted); a dead webhook never slows the sender."""

from __future__ import annotations

import multiprocessing
import socket
import time

import pytest

from tests.stages.test_sink import ListOutputsFactory
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.testing import run_inline
from vidpipe.stages.config import EventSettings
from vidpipe.stages.descriptors import FrameRef, LabelInfo, Result, StreamEnd, StreamStart
from vidpipe.stages.events import StreamDone
from vidpipe.stages.outputs import live_sink
from vidpipe.stages.outputs.live_sink import FramesLost, LiveSinkStage
from vidpipe.stages.outputs.notify import WebhookSender
from vidpipe.stages.sink import SinkParams
from vidpipe.stages.web.metrics import Metrics


def test_a_gap_left_by_a_crashed_stage_is_skipped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_sink, "GAP_TIMEOUT_S", 0.0)
    ring = SlotRing(multiprocessing.get_context("spawn"), 8, 3, "frames")
    try:
        results = []
        for seq in (0, 1, 4, 5):  # 2 and 3 died with a preprocess worker
            slot = ring.acquire(0)
            assert slot is not None
            results.append(Result(FrameRef("cam", seq, slot, 1, 1, seq / 25, 0.0), (1, 2, 3, 4, 5), None, 0, 0, 0))
        outputs = ListOutputsFactory()
        items = [StreamStart("cam", "cam", 1, 1, 0.0, 0, True), LabelInfo("sim", ("x",) * 1000, False),
                 *results, StreamEnd("cam", 8)]  # 6 and 7 were lost too, at the end
        got = run_inline(LiveSinkStage, SinkParams(ring, outputs), items)
        assert [seq for _, seq, _ in outputs.written] == [0, 1, 4, 5]
        assert sum(x.count for x in outputs.other if isinstance(x, FramesLost)) == 4
        assert ring.free_count() == 8  # every slot that reached the sink came back
        assert [e.frames for e in got.events if isinstance(e, StreamDone)] == [4]  # the stream still finished
    finally:
        ring.close()
        ring.unlink()


def test_a_dead_webhook_never_blocks_and_its_losses_are_counted() -> None:
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    metrics = Metrics()
    sender = WebhookSender(EventSettings(webhook=url, queue_size=10, retries=1, timeout_s=1.0), metrics).start()
    t0 = time.monotonic()
    for i in range(2000):
        sender.offer({"type": "label", "stream": "cam", "frame": i})
    offered_s = time.monotonic() - t0
    sender.close(grace_s=0.2)
    counts = metrics.counts()["events"]["webhook"]
    assert offered_s < 0.5  # 2000 offers to a dead receiver: no waiting
    assert counts["dropped"] >= 2000 - 10 - 1 and counts.get("failed", 0) >= 1
    assert counts["dropped"] + counts.get("failed", 0) == 2000

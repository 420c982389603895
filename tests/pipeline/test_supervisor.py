"""The runtime end to end on toy stages: order, no loss, EOS, failures, kills, Ctrl-C, cleanup."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline import toy_stages
from vidpipe.pipeline.channels import Channel
from vidpipe.pipeline.errors import StageFailed
from vidpipe.pipeline.flags import SharedFlag
from vidpipe.pipeline.shm import SlotRing
from vidpipe.pipeline.supervisor import ProcSpec, Supervisor, Tier


def run_toy(
    start_method: str,
    tmp_path: Path,
    values: list[int],
    workers: int = 2,
    sources: int = 1,
    endless: bool = False,
    on_event: Any = None,
    **worker_kw: Any,
) -> tuple[Supervisor, list[Any]]:
    ctx = multiprocessing.get_context(start_method)
    abort = SharedFlag(ctx)
    ring = SlotRing(ctx, 4, 8, "toy")  # fewer slots than items: back-pressure must work
    q1 = Channel(ctx, "q1", 3, abort)
    q2 = Channel(ctx, "q2", 3, abort)
    out = tmp_path / "out.json"
    work = toy_stages.WorkerParams(ring, **worker_kw)
    source = toy_stages.SourceParams(values, ring, endless)
    tiers = [
        Tier("src", tuple(ProcSpec(f"src-{i}", toy_stages.ListSource(source, outbox=q1)) for i in range(sources))),
        Tier("work", tuple(ProcSpec(f"work-{i}", toy_stages.Worker(work, q1, q2)) for i in range(workers)), inbox=q1),
        Tier("sink", (ProcSpec("sink", toy_stages.FileSink(toy_stages.FileSinkParams(str(out)), q2)),), inbox=q2),
    ]
    sup = Supervisor(ctx, tiers, [ring], [q1, q2], on_event or (lambda *a: None), abort=abort, drain_timeout_s=20)
    sup.run()
    return sup, json.loads(out.read_text())


@pytest.mark.timeout(60)
def test_every_item_arrives_once_and_eos_drains(start_method: str, tmp_path: Path, no_leaks: None) -> None:
    values = list(range(200))
    events: list[Any] = []
    _, got = run_toy(start_method, tmp_path, values, on_event=events.append)
    data = sorted(tuple(x) for x in got if x[0] != "end")
    assert data == [(i, 2 * i) for i in values]  # none lost, none duplicated, values from shm
    assert ["end", 200] in got
    assert events and events[-1] == toy_stages.Count(len(got))  # typed events reach on_event


@pytest.mark.timeout(60)
def test_several_sources_share_the_ring(start_method: str, tmp_path: Path, no_leaks: None) -> None:
    _, got = run_toy(start_method, tmp_path, list(range(50)), sources=3)
    assert len([x for x in got if x[0] != "end"]) == 150
    assert got.count(["end", 50]) == 3


@pytest.mark.timeout(60)
def test_a_failing_stage_stops_everything(start_method: str, tmp_path: Path, no_leaks: None) -> None:
    with pytest.raises(StageFailed) as err:
        run_toy(start_method, tmp_path, list(range(100)), fail_at=17)
    assert err.value.stage.startswith("work-")
    assert "ValueError: bad item 17" in str(err.value)
    assert "raise ValueError" in err.value.remote_traceback  # the remote traceback is kept


@pytest.mark.timeout(60)
def test_a_killed_stage_stops_everything(start_method: str, tmp_path: Path, no_leaks: None) -> None:
    with pytest.raises(StageFailed) as err:
        run_toy(start_method, tmp_path, list(range(100)), kill_at=5)
    assert "killed by signal 9" in str(err.value)


@pytest.mark.timeout(60)
def test_ctrl_c_drains_and_finishes_outputs(start_method: str, tmp_path: Path, no_leaks: None) -> None:
    first_progress = threading.Event()

    def on_event(event: toy_stages.Count) -> None:
        if event.n > 20 and not first_progress.is_set():
            first_progress.set()
            os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C reaches the supervisor

    sup, got = run_toy(start_method, tmp_path, list(range(10)), endless=True, on_event=on_event)
    assert sup.interrupted
    ends = [x for x in got if x[0] == "end"]
    assert len(ends) == 1  # the source ended its stream, the sink wrote its output
    assert len([x for x in got if x[0] != "end"]) == ends[0][1]  # everything sent was processed

"""Live streams stay up: kill -9 a source, a preprocess and the infer process of a running
`vidpipe live`; each is restarted (counted in /metrics and /status.json) and both streams go on."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from tests.media import write_video
from tests.processes import descendants, state
from tests.stages.jobs.test_live_job import Live, lines, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def child(parent: int, comm: str) -> int:
    """The pid of `parent`'s child process named `comm` (stage processes name themselves vp:NAME)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if name == comm and int(rest[1]) == parent:
            return int(stat.parent.name)
    raise LookupError(f"no process {comm} under {parent}")


def test_crashed_live_stages_are_restarted_and_the_streams_go_on(tmp_path: Path) -> None:
    live, out = _start(tmp_path, ("a", "b"), "    backoff_initial_s: 0.2\n")
    try:
        base = live.url()
        wait_until("labels of both", lambda: len(lines(out, "a")) > 10 and len(lines(out, "b")) > 10)
        for stage in ("source:a", "preprocess-0", "infer-0"):
            n_a, n_b = len(lines(out, "a")), len(lines(out, "b"))
            t_kill = time.monotonic()
            os.kill(child(live.proc.pid, f"vp:{stage}"[:15]), signal.SIGKILL)
            wait_until(f"both streams labelled again after killing {stage}",
                       lambda n_a=n_a, n_b=n_b: len(lines(out, "a")) > n_a + 20
                       and len(lines(out, "b")) > n_b + 20,
                       timeout=40)
            print(f"{stage}: both streams back {time.monotonic() - t_kill:.2f} s after kill -9")
        metrics = urllib.request.urlopen(base + "metrics", timeout=5).read().decode()
        status = json.loads(urllib.request.urlopen(base + "status.json", timeout=5).read())
        for stage in ("source:a", "preprocess-0", "infer-0"):
            assert re.search(rf'vidpipe_restarts_total{{stage="{stage}"}} 1\.0', metrics), stage
            assert status["restarts"][stage] == 1
        seqs = [r["frame"] for r in lines(out, "a")]
        assert seqs == sorted(seqs)  # a restarted source goes on numbering: the order holds
    finally:
        code = live.stop()
    assert code == 0
    log = live.log.read_text()
    assert log.count("restart 1 in") == 3 and "Traceback" not in log
    assert not list(Path("/dev/shm").glob(f"vidpipe_{live.proc.pid}_*"))


def test_a_killed_sink_comes_back_and_every_stream_goes_on(tmp_path: Path, start_method: str) -> None:
    """kill -9 of the sink (outputs, page, API): restarted, on the same port, and each stream it
    had begun is labeled again, into new files; what it held is counted lost."""
    live, out = _start(tmp_path, ("a", "b"), "    backoff_initial_s: 0.2\n", "  record: true\n", start_method)
    try:
        base = live.url()
        wait_until("labels and recordings of both", lambda: all(
            len(lines(out, s)) > 10 and any(p.stat().st_size for p in out.glob(f"{s}.*.mp4")) for s in "ab"))
        sink = child(live.proc.pid, "vp:sink")
        os.kill(sink, signal.SIGKILL)
        t_kill = time.monotonic()
        last = {s: lines(out, s)[-1]["time"] for s in "ab"}  # the dead sink's last lines
        back: dict[str, float] = {}

        def labeled_again() -> bool:
            new = [s for s in "ab" if s not in back and lines(out, s)[-1]["time"] > last[s]]
            back.update({s: time.monotonic() - t_kill for s in new})
            return len(back) == 2

        wait_until("labels of every stream from the new sink", labeled_again, timeout=5)
        print("labels again after kill -9 of the sink: " + ", ".join(f"{s} {t:.2f} s" for s, t in sorted(back.items())))
        wait_until("the new sink's page", lambda: live.log.read_text().count("live view on") == 2)
        assert live.log.read_text().count(f"live view on {base}") == 2  # the same port
        metrics = urllib.request.urlopen(base + "metrics", timeout=5).read().decode()
        status = json.loads(urllib.request.urlopen(base + "status.json", timeout=5).read())
        assert re.search(r'vidpipe_restarts_total{stage="sink"} 1\.0', metrics) and status["restarts"]["sink"] == 1
        assert re.search(r'vidpipe_drops_total{reason="lost",stream="a"}', metrics)
        processes = [live.proc.pid, *descendants(live.proc.pid)]
    finally:
        code = live.stop()
    assert code == 0
    for s in "ab":
        for path in out.glob(f"{s}.*jsonl"):
            assert all(json.loads(x)["run"] for x in path.read_text().splitlines())  # every line whole
        assert len(list(out.glob(f"{s}.*.mp4"))) == 2  # the dead sink's recording, and a new one
    assert sorted(lines(out, "a"), key=lambda r: r["frame"]) == lines(out, "a")  # in order, no frame twice
    log = live.log.read_text()
    assert log.count("stage sink died (killed by signal 9): restart 1 in") == 1 and "Traceback" not in log
    # (multiprocessing's resource tracker ends once it has read the job's last word)
    wait_until("no process of the job left", lambda: all(state(pid) in ("gone", "Z") for pid in processes), 5)
    assert not list(Path("/dev/shm").glob(f"vidpipe_{live.proc.pid}_*"))


def test_a_stage_that_keeps_crashing_hits_the_start_limit(tmp_path: Path) -> None:
    live, out = _start(tmp_path, ("a",), "    max_restarts: 1\n    backoff_initial_s: 0.1\n")
    wait_until("labels", lambda: len(lines(out, "a")) > 5)
    os.kill(child(live.proc.pid, "vp:infer-0"), signal.SIGKILL)
    wait_until("the restart", lambda: "restart 1 in" in live.log.read_text())
    wait_until("the new infer process", lambda: _has_child(live.proc.pid, "vp:infer-0"))
    os.kill(child(live.proc.pid, "vp:infer-0"), signal.SIGKILL)
    assert live.proc.wait(timeout=30) == 1  # the second crash within the window stops the job
    assert "not restarted again" in live.log.read_text()
    assert not list(Path("/dev/shm").glob(f"vidpipe_{live.proc.pid}_*"))


def _start(tmp_path: Path, names: tuple[str, ...], restart: str, extra: str = "",
           start_method: str = "spawn") -> tuple[Live, Path]:
    """`vidpipe live` on sim, two preprocess workers, looping clips named `names`; `extra`: live keys."""
    sources = "".join(f"    - uri: {write_video(tmp_path / f'{n}.mp4', frames=40, width=160, height=120, fps=20)}\n"
                      "      loop: true\n" for n in names)
    cfg = tmp_path / "live.yaml"
    cfg.write_text(f"job: live\nruntime:\n  start_method: {start_method}\nbackend:\n  name: sim\npreprocess:\n"
                   "  workers: 2\nlive:\n  status_interval_s: 0\n"
                   f"{extra}  restart:\n{restart}  sources:\n{sources}")
    return Live(["--config", str(cfg)], tmp_path / "out"), tmp_path / "out"


def _has_child(parent: int, comm: str) -> bool:
    try:
        child(parent, comm)
        return True
    except LookupError:
        return False

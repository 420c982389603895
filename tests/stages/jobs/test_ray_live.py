"""`vidpipe live --ray`: one front, streams on the nodes of a real Ray cluster on this machine
(ray.cluster_utils: a head without CPUs and two nodes), small generated videos played as cameras.

Placed by capacity and the API (added, refused in one line, removed), a front killed and started
again that picks up the running streams, and the issue's "done when": six looping streams over two
nodes, one node's power cut, every one of its streams labeling again on the other within
cluster.failover_s, the page, API and metrics showing all six throughout, and what was written:
every JSONL line whole, no (run, stream, frame) twice, no event twice."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.media import write_video
from tests.stages.jobs.test_live_api import call
from tests.stages.jobs.test_live_job import Live, wait_until
from vidpipe.stages.live_files import segments

ray_cluster_utils = pytest.importorskip("ray.cluster_utils", reason="the ray extra is installed by `make test`")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

FAILOVER_S = 10.0  # cluster.failover_s, the default


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    c = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        c.add_node(num_cpus=2)
    c.wait_for_nodes()
    yield c
    c.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("cameras")
    return [write_video(d / f"cam{i}.mp4", frames=40, width=160, height=120, fps=10) for i in range(7)]


@pytest.fixture(autouse=True)
def no_actors_left(cluster: Any) -> Iterator[None]:
    """A failed test's front may leave its (detached) actors: the next test needs their CPUs."""
    yield
    code = (f"import ray; ray.init(address={cluster.address!r}, log_to_driver=False)\n"
            "for a in ray.util.list_named_actors(all_namespaces=True):\n"
            "    ray.kill(ray.get_actor(a['name'], namespace=a['namespace']))\n"
            "    print(a['name'])")
    left = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.split()
    assert not left, f"actors left running: {left}"


def front(cluster: Any, sources: list[Path], out: Path, extra: str = "") -> Live:
    config = out.parent / "live.yaml"
    config.write_text("backend:\n  name: sim\npreprocess:\n  workers: 1\nlive:\n  status_interval_s: 0\n" + extra)
    return Live([*map(str, sources), "--loop", "--ray", cluster.address, "--config", str(config)], out)


def status(live: Live) -> dict[str, Any]:
    with urllib.request.urlopen(live.url() + "status.json", timeout=10) as r:
        return dict(json.loads(r.read()))


def all_live(live: Live, names: set[str], nodes: set[str] | None = None) -> bool:
    streams = status(live)["streams"]
    return set(streams) == names and all(s["health"] == "live" and (nodes is None or s["node"] in nodes)
                                         for s in streams.values())


def spread(live: Live) -> dict[str, str]:
    return {name: s["node"] for name, s in status(live)["streams"].items()}


def test_streams_are_placed_added_refused_removed_and_picked_up_by_a_new_front(
        cluster: Any, videos: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    extra = "cluster:\n  max_streams_per_node: 2\n"
    live = front(cluster, videos[:3], out, extra)
    try:
        api = live.url() + "api/streams"
        wait_until("three streams labeling", lambda: all_live(live, {"cam0", "cam1", "cam2"}), timeout=120)
        before = Counter(spread(live).values())
        assert sorted(before.values()) == [1, 2]  # 2 of 3 streams on one node, 1 on the other
        roomy = min(before, key=before.__getitem__)
        code, body = call(api, "POST", {"uri": str(videos[3]), "name": "extra", "loop": True})
        assert code == 201 and body["stream"]["node"] == roomy, body
        code, body = call(api, "POST", {"uri": str(videos[4]), "name": "more", "loop": True})
        assert code == 400 and "\n" not in body["error"], body
        assert body["error"].startswith("POST /api/streams: more (160x120 at 10 fps) fits on no node: ")
        assert body["error"].count("has 2 streams (cluster.max_streams_per_node)") == 2
        wait_until("the added stream labeling", lambda: all_live(live, {"cam0", "cam1", "cam2", "extra"}), 60)
        code, _ = call(api + "/extra", "DELETE")
        assert code == 200
        wait_until("the removed stream gone", lambda: set(status(live)["streams"]) == {"cam0", "cam1", "cam2"}, 30)
        running = spread(live)

        live.proc.kill()  # the front only: the nodes' actors (detached) go on
        live.proc.wait(10)
        again = front(cluster, videos[:3], out, extra)
        wait_until("the new front serving", lambda: all_live(again, {"cam0", "cam1", "cam2"}), timeout=60)
        assert spread(again) == running  # picked up where they ran, not started again
        log = again.log.read_text()
        assert "picked up 2 streams that node" in log and "picked up 1 stream that node" in log, log
        names = [s["name"] for s in call(again.url() + "api/streams")[1]["streams"]]
        assert sorted(names) == ["cam0", "cam1", "cam2"]

        # an actor killed on a node that stays up: its graph goes with it; its stream waits for room
        # (the other node has 2, the cap), then runs on the new actor the node gets after failover_s
        lone = next(name for name, node in running.items() if list(running.values()).count(node) == 1)
        actor = _actor_of(cluster, running[lone])
        graph = actor.children(recursive=True)
        actor.kill()
        wait_until("the killed actor's graph gone", lambda: not any(_alive(p) for p in graph), 15)
        wait_until("the stream labeling again on its node's new actor",
                   lambda: all_live(again, {"cam0", "cam1", "cam2"}) and spread(again) == running, FAILOVER_S + 60)
        log = again.log.read_text()
        assert f"{lone} (160x120 at 10 fps) fits on no node" in log and "it waits for room" in log, log
        assert f"node {running[lone]} joined" in log
        assert again.stop() == 0
        assert "stopped 3 streams on 2 nodes" in again.log.read_text()
    finally:
        for proc in (live.proc, again.proc if "again" in locals() else live.proc):
            if proc.poll() is None:
                proc.kill()
    events = [json.loads(x) for p in segments(out, "events") for x in p.read_text().splitlines()]
    keys = Counter((e["run"], e["stream"], e["frame"], e["type"]) for e in events)
    assert events and max(keys.values()) == 1, keys


def test_a_node_lost_moves_its_streams_to_the_other_within_failover_s(
        cluster: Any, videos: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    names = {f"cam{i}" for i in range(6)}
    live = front(cluster, videos[:6], out)
    seen: list[tuple[int, int, int]] = []  # streams on the page, the API, /metrics, while it moves
    done = threading.Event()
    try:
        wait_until("six streams labeling", lambda: all_live(live, names), timeout=120)
        before = spread(live)
        assert sorted(Counter(before.values()).values()) == [3, 3]
        doomed = before["cam0"]
        moved = sorted(n for n, node in before.items() if node == doomed)
        survivor = next(node for node in before.values() if node != doomed)
        watcher = threading.Thread(target=_watch, args=(live, seen, done))
        watcher.start()
        t_cut = time.time()
        _power_cut(cluster, doomed)
        wait_until("every stream labeling on the node left", lambda: all_live(live, names, {survivor}),
                   timeout=FAILOVER_S + 20)
        firsts = {name: _first_line_after(out, name, t_cut) for name in moved}
        took = {name: round(first - t_cut, 2) for name, first in firsts.items()}
        print(f"node {doomed} cut: first label on node {survivor} after {took} s")
        assert max(took.values()) < FAILOVER_S, took
        done.set()
        watcher.join(10)
        assert seen and all(counts == (6, 6, 6) for counts in seen), seen
        metrics = urllib.request.urlopen(live.url() + "metrics", timeout=10).read().decode()
        assert f'node="{doomed}"}} 0.0' in metrics  # vidpipe_node_up
        assert metrics.count(f'vidpipe_frames_total{{node="{survivor}"') == 6
        assert status(live)["nodes"][doomed]["up"] is False
        assert live.stop() == 0
    finally:
        done.set()
        if live.proc.poll() is None:
            live.proc.kill()
    _assert_outputs_whole_and_once(out, names, moved)


def _watch(live: Live, seen: list[tuple[int, int, int]], done: threading.Event) -> None:
    while not done.wait(0.5):
        page = len(status(live)["streams"])
        listed = len(call(live.url() + "api/streams")[1]["streams"])
        metrics = urllib.request.urlopen(live.url() + "metrics", timeout=10).read().decode()
        seen.append((page, listed, metrics.count("vidpipe_stream_moves_total{")))


def _actor_of(cluster: Any, short: str) -> Any:
    """The node's LiveNode actor process: the Ray worker whose children are vidpipe's stages (vp:...)."""
    import psutil

    node = next(n for n in cluster.worker_nodes if n.node_id.startswith(short))
    raylet = psutil.Process(node.all_processes["raylet"][0].process.pid)
    return next(p for p in raylet.children(recursive=True) if any(c.name().startswith("vp:") for c in p.children()))


def _alive(process: Any) -> bool:
    import psutil

    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _power_cut(cluster: Any, short: str) -> None:
    """Every process of the node at once (its raylet, workers, the actor and its graph), as a host
    that dies; then Ray's own bookkeeping of it."""
    import psutil
    from ray._private import ray_constants

    node = next(n for n in cluster.worker_nodes if n.node_id.startswith(short))
    raylet = psutil.Process(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)
    for p in [raylet, *raylet.children(recursive=True)]:
        p.kill()
    cluster.remove_node(node, allow_graceful=False)


def _first_line_after(out: Path, stream: str, t: float) -> float:
    times = [json.loads(x)["time"] for p in segments(out, stream) for x in p.read_text().splitlines()]
    return min(x for x in times if x > t)


def _assert_outputs_whole_and_once(out: Path, names: set[str], moved: list[str]) -> None:
    for name in names:
        keys: Counter[tuple[str, int]] = Counter()
        for path in segments(out, name):
            text = path.read_text()
            assert text.endswith("\n"), path
            for line in text.splitlines():
                record = json.loads(line)  # every line whole
                keys[(record["run"], record["frame"])] += 1
        assert max(keys.values()) == 1, name  # never a duplicate (run, stream, frame)
        runs = {run for run, _ in keys}
        assert len(runs) == (2 if name in moved else 1), (name, runs)
    events = [json.loads(x) for p in segments(out, "events") for x in p.read_text().splitlines()]
    keys = Counter((e["run"], e["stream"], e["frame"], e["type"]) for e in events)
    assert max(keys.values()) == 1, keys
    assert {e["stream"] for e in events} == names


def test_the_python_api_runs_live_streams_on_the_cluster(cluster: Any, videos: list[Path], tmp_path: Path) -> None:
    """vidpipe.live(..., ray=ADDRESS): the handle's calls and on_event as on one host."""
    import vidpipe

    with pytest.raises(vidpipe.ConfigError, match=r"^on_result: per-frame results stay on the nodes"):
        vidpipe.live([str(videos[5])], ray=cluster.address, on_result=print)
    events: list[Any] = []
    run = vidpipe.live([{"uri": str(videos[5]), "name": "py", "loop": True}], out=tmp_path / "out", backend="sim",
                       ray=cluster.address, on_event=events.append, preprocess={"workers": 1})
    with run:
        wait_until("frames and a label event", lambda: run.status().frames > 0 and bool(events), timeout=120)
        run.add_stream(str(videos[6]), name="py2", loop=True)
        assert {s["name"] for s in run.streams()} == {"py", "py2"}
        with pytest.raises(vidpipe.ConfigError, match="already"):
            run.add_stream(str(videos[6]), name="py2")
        wait_until("py2 labeling", lambda: any(e.stream == "py2" for e in events), timeout=60)
        run.remove_stream("py2")
        wait_until("py2 gone", lambda: [s["name"] for s in run.streams()] == ["py"], timeout=30)
        assert run.status().state == "running" and run.status().streams_open == 1
    assert run.join(60) and run.exit_code == 0
    assert all(isinstance(e, vidpipe.LiveEvent) and e.kind == "label" for e in events)
    written = [json.loads(x) for p in segments(tmp_path / "out", "events") for x in p.read_text().splitlines()]
    assert Counter((e["stream"], e["frame"]) for e in written) == Counter((e.stream, e.data["frame"]) for e in events)

"""`vidpipe label --ray`: a real Ray cluster of several nodes on this machine (ray.cluster_utils),
nodes with their own custom resources; results equal to the one-host run, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.media import write_video
from tests.processes import VIDPIPE, descendants, finish, state, wait_for
from tests.stages.jobs.test_label_job import photo
from tests.stages.jobs.test_resume import frames, labels, manifest
from vidpipe.stages.jobs.ray_worker import STAGING

ray_cluster_utils = pytest.importorskip("ray.cluster_utils", reason="the ray extra is installed by `make test`")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A head without cards and two nodes with one card each (the `alveo` resource)."""
    c = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    for _ in range(2):
        c.add_node(num_cpus=2, resources={"alveo": 1})
    c.wait_for_nodes()
    yield c
    c.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("videos")
    for i, (n, name) in enumerate(((30, "chelsea"), (45, "coffee"), (20, "astronaut"), (35, "rocket"))):
        write_video(d / f"v{i}.mp4", frames=n, width=160, height=120, fps=25, photo=photo(name))
    return d


def vidpipe(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIDPIPE, *args, "--no-progress"], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("backend", ["sim", pytest.param("cpu", marks=pytest.mark.extended),
                                     pytest.param("alveo-emu", marks=pytest.mark.extended)])
def test_a_folder_on_the_cluster_equals_the_one_host_run(cluster: Any, videos: Path, tmp_path: Path,
                                                          backend: str) -> None:
    local, spread = tmp_path / "local", tmp_path / "ray"
    flags = ["--backend", backend, "--batch", "4"]
    assert vidpipe("label", str(videos), "--out", str(local), *flags).returncode == 0
    run = vidpipe("label", str(videos), "--out", str(spread), *flags, "--ray", cluster.address)
    assert run.returncode == 0, run.stderr
    for name in ("v0", "v1", "v2", "v3"):
        assert labels(local / f"{name}.jsonl") == labels(spread / f"{name}.jsonl"), name
        assert (spread / f"{name}.mp4").exists() and (spread / f"{name}.segments.json").exists()
    entries = manifest(spread)["videos"]
    assert {e["state"] for e in entries.values()} == {"done"}
    nodes = {e["host"] for e in entries.values()}
    assert all("(node " in h for h in nodes)
    if backend == "alveo-emu":  # only the two nodes with a card may take them
        head = cluster.head_node.unique_id[:8]
        assert not any(head in h for h in nodes)
    assert not (spread / STAGING).exists() and not list(spread.glob("*.part"))
    again = vidpipe("label", str(videos), "--out", str(spread), *flags, "--ray", cluster.address, "--resume")
    assert again.returncode == 0 and "all 4 videos were done already" in again.stderr


@pytest.mark.extended
def test_short_videos_share_tasks_with_the_same_results(cluster: Any, tmp_path: Path) -> None:
    """Without warm workers: one long video and eight short ones on 3 worker slots (6 CPUs, 2 per
    worker): 160 frames, at most 13 a task (4 tasks per slot): the long one alone, the short ones
    in pairs."""
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "long.mp4", frames=120, width=160, height=120, fps=25, photo=photo("coffee"))
    for i in range(8):
        write_video(videos / f"s{i}.mp4", frames=5, width=160, height=120, fps=25, photo=photo("chelsea"))
    local, spread = tmp_path / "local", tmp_path / "ray"
    flags = ["--backend", "sim", "--batch", "4", "-v"]
    assert vidpipe("label", str(videos), "--out", str(local), *flags).returncode == 0
    tasks = _config(tmp_path, "cluster:\n  warm_workers: false\n")  # the fallback: Ray tasks
    run = vidpipe("label", str(videos), "--out", str(spread), *flags, "--ray", cluster.address, "--config", str(tasks))
    assert run.returncode == 0, run.stderr
    assert "9 videos in 5 Ray tasks" in run.stderr
    for name in ["long", *(f"s{i}" for i in range(8))]:
        assert labels(local / f"{name}.jsonl") == labels(spread / f"{name}.jsonl"), name
    assert {e["state"] for e in manifest(spread)["videos"].values()} == {"done"}
    assert not (spread / STAGING).exists() and not list(spread.glob("*.part"))


def test_bad_addresses_and_clusters_without_cards_are_one_line(cluster: Any, videos: Path, tmp_path: Path) -> None:
    bad = vidpipe("label", str(videos), "--out", str(tmp_path / "a"), "--backend", "sim", "--ray", "127.0.0.1:9",
                  timeout=120)
    assert bad.returncode == 2, bad.stderr
    lines = [ln for ln in bad.stderr.splitlines() if "ERROR" in ln]
    assert len(lines) == 1 and "cluster.ray_address: cannot join the Ray cluster at 127.0.0.1:9" in lines[0]
    greedy = vidpipe("label", str(videos), "--out", str(tmp_path / "b"), "--backend", "sim", "--ray", cluster.address,
                     "--config", str(_config(tmp_path, "cluster:\n  cpus_per_worker: 64\n")))
    assert greedy.returncode == 1 and "the Ray cluster has no node with {'CPU': 64.0}" in greedy.stderr
    assert "Traceback" not in bad.stderr + greedy.stderr


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return path


def test_a_node_lost_mid_job_still_labels_every_video_exactly_once(videos: Path, tmp_path: Path) -> None:
    c = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    doomed = c.add_node(num_cpus=2)
    c.wait_for_nodes()
    try:
        slow = _config(tmp_path, "backend:\n  name: sim\n  max_batch: 1\n  sim:\n    per_image_ms: 40\n")
        local, spread = tmp_path / "local", tmp_path / "ray"
        assert vidpipe("label", str(videos), "--out", str(local), "--config", str(slow)).returncode == 0
        cmd = [*VIDPIPE, "label", str(videos), "--out", str(spread), "--config", str(slow), "--ray", c.address,
               "--no-progress"]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        staging = spread / STAGING
        deadline = time.monotonic() + 120
        while not (staging.exists() and len(list(staging.iterdir())) >= 2  # both nodes' workers are up
                   and any(staging.glob("*/*.part"))):  # and labeling
            assert time.monotonic() < deadline and proc.poll() is None, "the job never got going"
            time.sleep(0.05)
        c.remove_node(doomed)  # a node lost mid-video
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        for name in ("v0", "v1", "v2", "v3"):
            assert labels(local / f"{name}.jsonl") == labels(spread / f"{name}.jsonl"), name
        assert {e["state"] for e in manifest(spread)["videos"].values()} == {"done"}
        assert not staging.exists() and not list(spread.glob("*.part"))
    finally:
        c.shutdown()


def _workers(out: Path) -> Counter[str]:
    """Videos per worker (its node and pid, in the manifest's host of each video)."""
    return Counter(e["host"] for e in manifest(out)["videos"].values())


def _complete(out: Path, videos: dict[str, int]) -> None:
    """Every video done once, with all its frames in its JSONL and its annotated video; nothing else."""
    assert {name: e["state"] for name, e in ((e["name"], e) for e in manifest(out)["videos"].values())} == \
        dict.fromkeys(videos, "done")
    for name, n in videos.items():
        assert len((out / f"{name}.jsonl").read_text().splitlines()) == n and frames(out / f"{name}.mp4") == n, name
    assert not (out / STAGING).exists() and not list(out.glob("*.part"))


def test_warm_workers_each_label_several_videos_and_one_killed_mid_job_loses_none(cluster: Any,
                                                                                  tmp_path: Path) -> None:
    """3 worker slots, 12 short videos: each worker keeps its graph and takes video after video; a
    worker killed (kill -9) while it labels: its videos go to the others; OUT holds complete
    outputs only, each video's once; the killed worker's graph processes leave too."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(12):
        write_video(videos / f"s{i:02}.mp4", frames=8, width=96, height=64, fps=25, photo=photo("chelsea"))
    slow = _config(tmp_path, "backend:\n  name: sim\n  max_batch: 1\n  sim:\n    per_image_ms: 25\n")
    out = tmp_path / "ray"
    proc = subprocess.Popen([*VIDPIPE, "label", str(videos), "--out", str(out), "--config", str(slow), "--ray",
                             cluster.address, "--no-progress", "-v"], stderr=subprocess.PIPE, text=True)
    labeling: list[Path] = []  # staging folders with outputs being written

    def look() -> bool:
        labeling[:] = [p.parent for p in (out / STAGING).glob("*/*.part")]
        return bool(labeling)

    wait_for(look, timeout=120, what="a worker labeling")
    victim = int(labeling[0].name.split("-")[1])  # pid-PID-RANDOM
    graph = descendants(victim)
    os.kill(victim, signal.SIGKILL)
    err = finish(proc, timeout=240)
    assert proc.returncode == 0, err
    assert "12 videos on 3 warm workers" in err and "a worker was lost" in err
    _complete(out, {f"s{i:02}": 8 for i in range(12)})
    per_worker = _workers(out)  # the victim may have finished some before it was killed
    assert len(per_worker) <= 4 and max(per_worker.values()) >= 3, per_worker  # 3 slots + a replacement
    wait_for(lambda: all(state(pid) in ("gone", "Z") for pid in graph), timeout=60,
             what="the killed worker's graph to leave")

"""`python -m bench.ray_live` (part of `make bench-ray`): live streams through one front
(`vidpipe live --ray`) on 1, 2 and 3 Ray nodes of this machine, and the failover time when a node dies.

Every node is a `ray.cluster_utils.Cluster` node with 2 CPUs (its live graph takes them). The same
STREAMS looping clips (WIDTH x HEIGHT at FPS, played as cameras) are placed by the front each time,
and the `sim` card is slowed to SLOW_MS per image, so that one node's card is near full with every
stream on it (they still fit its measured rate). Measured side by side in one run, over WINDOW_S
once every stream labels, from what the nodes wrote (each JSONL line has the frame's capture time
and its capture -> label latency):

    labeled fps      lines captured in the window / WINDOW_S, every stream
    p50 / p99 ms     capture -> label latency of those lines
    per node         the front's placement (streams on each node)
    failover s       (2 and 3 nodes) the node of the first stream loses power (every process killed
                     at once) -> the first label of each of its streams on another node, from the
                     capture time of its first line after the cut (max and mean over those streams)

Written to bench/results/ray_live.json and .txt.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bench.inputs import ClipSpec, ensure_clip
from bench.scaling import stream_links

SLOW_MS = 9.0  # per image: the card labels 4 / (1.5 + 4 x 9) ms = 107 fps at the live batch (4)
STREAMS, FPS = 6, 15  # 90 fps: 84% of one card
WIDTH, HEIGHT, FRAMES = 320, 240, 150  # a 10 s loop
WARMUP_S, WINDOW_S = 5.0, 20.0
OUT = Path(__file__).resolve().parent / "results"


def run_nodes(nodes: int, clips: list[Path], workdir: Path) -> dict[str, Any]:
    """One front on a fresh cluster of `nodes` nodes: the window's figures, then a node's power cut."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(nodes):
        cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    out = workdir / f"live{nodes}"
    config = workdir / "live.yaml"
    config.write_text(f"backend:\n  name: sim\n  sim:\n    per_image_ms: {SLOW_MS}\npreprocess:\n  workers: 1\n"
                      "live:\n  status_interval_s: 0\n")
    log = workdir / f"front{nodes}.log"
    cmd = [sys.executable, "-m", "vidpipe", "live", *map(str, clips), "--loop", "--ray", cluster.address, "--out",
           str(out), "--config", str(config), "--port", "0"]
    front = subprocess.Popen(cmd, stderr=log.open("w"), stdout=subprocess.DEVNULL)
    try:
        url = _until(lambda: _url(log), 120, "the front's page")
        _until(lambda: _all_live(url), 240, "every stream labeling")
        time.sleep(WARMUP_S)
        t0 = time.time()
        time.sleep(WINDOW_S)
        result = {"nodes": nodes, **_window(out, t0, t0 + WINDOW_S),
                  "per_node": sorted(Counter(s["node"] for s in _status(url)["streams"].values()).values())}
        if nodes > 1:
            result["failover_s"] = _failover(cluster, url, out)
        return result
    finally:
        front.send_signal(signal.SIGINT)
        front.wait(120)
        cluster.shutdown()


def _window(out: Path, t0: float, t1: float) -> dict[str, Any]:
    latencies = [line["latency_ms"] for path in out.glob("stream*.jsonl") for line in _lines(path)
                 if t0 <= line["time"] < t1]
    p50, p99 = np.percentile(latencies, [50, 99]) if latencies else (float("nan"), float("nan"))
    return {"fps": round(len(latencies) / (t1 - t0), 1), "p50_ms": round(float(p50), 1), "p99_ms": round(float(p99), 1)}


def _failover(cluster: Any, url: str, out: Path) -> dict[str, float]:
    import psutil
    from ray._private import ray_constants

    where = {name: s["node"] for name, s in _status(url)["streams"].items()}
    doomed = where["stream1"]
    moved = [name for name, node in where.items() if node == doomed]
    node = next(n for n in cluster.worker_nodes if n.node_id.startswith(doomed))
    raylet = psutil.Process(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)
    t_cut = time.time()
    for p in [raylet, *raylet.children(recursive=True)]:
        p.kill()
    cluster.remove_node(node, allow_graceful=False)
    _until(lambda: _all_live(url, exclude=doomed), 120, "every stream labeling on the nodes left")
    took = [min(line["time"] for path in out.glob(f"{name}.*.jsonl") for line in _lines(path)
                if line["time"] > t_cut) - t_cut for name in moved]
    return {"max": round(max(took), 2), "mean": round(sum(took) / len(took), 2), "streams": len(took)}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def _url(log: Path) -> str | None:
    found = re.search(r"live view on (https?://\S+)", log.read_text())
    return found.group(1) if found else None


def _status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "status.json", timeout=10) as r:
        return dict(json.loads(r.read()))


def _all_live(url: str, exclude: str = "") -> bool:
    streams = _status(url)["streams"]
    return len(streams) == STREAMS and all(s["health"] == "live" and s["node"] != exclude for s in streams.values())


def _until(what: Any, timeout: float, name: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := what()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: not within {timeout:.0f} s")
        time.sleep(0.5)
    return found


def table(results: list[dict[str, Any]]) -> str:
    card = 4 / (1.5 + 4 * SLOW_MS) * 1000
    lines = [f"Live on Ray nodes of one machine: {STREAMS} streams {WIDTH}x{HEIGHT} at {FPS} fps "
             f"({STREAMS * FPS} fps), sim card at {SLOW_MS} ms/image ({card:.0f} fps per card at batch 4), "
             f"over {WINDOW_S:.0f} s",
             f"{'nodes':>5}  {'labeled fps':>11}  {'p50 ms':>7}  {'p99 ms':>7}  {'per node':>10}  "
             f"{'failover s (max/mean)':>22}"]
    for r in results:
        f = r.get("failover_s")
        fail = f"{f['max']:.1f} / {f['mean']:.1f}" if f else "-"
        lines.append(f"{r['nodes']:>5}  {r['fps']:>11.1f}  {r['p50_ms']:>7.1f}  {r['p99_ms']:>7.1f}  "
                     f"{'+'.join(map(str, r['per_node'])):>10}  {fail:>22}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ray_live", description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-ray-live-") as tmp:
        workdir = Path(tmp)
        clip = ensure_clip(ClipSpec(WIDTH, HEIGHT, FRAMES, FPS))
        clips = stream_links(clip, STREAMS, workdir, "cameras")
        results = []
        for n in args.nodes:
            print(f"ray live: {n} node(s) ...", flush=True)
            results.append(run_nodes(n, clips, workdir))
    text = table(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray_live.json").write_text(json.dumps(results, indent=1))
    (args.out / "ray_live.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

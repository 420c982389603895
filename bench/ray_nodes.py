"""`python -m bench.ray_nodes` (`make bench-ray`): labeling one folder on 1, 2 and 3 Ray nodes,
and the per-video cost of warm workers against Ray tasks and a local job.

Every node is a `ray.cluster_utils.Cluster` node on this machine with 2 CPUs, i.e. one vidpipe
worker (cluster.cpus_per_worker = 2), and the `sim` card is slowed (SLOW_MS per image) so that
each node's card, not this machine's two cores, is the limit: throughput should then grow with
the number of nodes. Printed and written (bench/results/ray_nodes.json, ray_nodes.png):

    fps          frames / wall time of the whole `vidpipe label --ray` command (connect, plan,
                 label, summary)
    x 1 node     fps / the 1-node fps, measured in the same run
    card max     the slowed card's modeled fps x nodes (the ideal)
    overhead/video  (wall x nodes - sum of the videos' labeling time) / videos: what a video
                 costs besides labeling (Ray scheduling, the worker's graph start-up, publishing);
                 negative when a worker labels several videos at once (their labeling times overlap)

Then short videos (SHORT_FRAMES frames each, the `sim` card at full speed, no annotated video) on
one node, side by side on one cluster: a local job (`vidpipe label` without Ray, the machine's 2
cores), warm workers (the default) and one video per Ray task (cluster.warm_workers false,
task_frames 0), each on SHORT_SETS[0] and SHORT_SETS[1] videos, --repeat times (the median wall
counts; after a run of each that is not counted: a fresh cluster's first jobs start slower). A
mode's cost per video is the slope of its wall time between the two sets (what one more video
costs: the command's start-up, Ray's connection and a worker's start cancel out); warm workers'
overhead is their slope less the local job's, with the target of #20 (at most TARGET_S) met or
MISSED (bench/results/ray_warm.png).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.inputs import ClipSpec, ensure_clip
from bench.scaling import stream_links
from bench.throughput import sim_max_fps

SLOW_MS = 10.0  # per image: the card does 8 / (1.5 + 8 x 10) ms = ~98 fps at batch 8
BATCH = 8
VIDEOS, FRAMES = 6, 400
SHORT_SETS, SHORT_FRAMES = (4, 20), 30
TARGET_S = 0.2  # warm workers' per-video overhead over a local job's, at most (#20)
MODES = {  # the short videos' runs: the cluster section of their config; None: a local job
    "local job": None,
    "warm workers": "cluster:\n  cpus_per_worker: 2\n  warm_workers: true\n",
    "one per task": "cluster:\n  cpus_per_worker: 2\n  warm_workers: false\n  task_frames: 0\n",
}
OUT = Path(__file__).resolve().parent / "results"


def card_fps() -> float:
    return sim_max_fps(BATCH, SLOW_MS)


@contextlib.contextmanager
def ray_cluster(nodes: int) -> Iterator[str]:
    """A fresh cluster of `nodes` nodes of 2 CPUs on this machine; its address."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        cluster.shutdown()


def label(videos: Path, out: Path, config_text: str, address: str | None) -> float:
    """One `vidpipe label` (on the cluster at `address`, or here); its wall time."""
    config = out.with_suffix(".yaml")
    config.write_text(config_text)
    cmd = [sys.executable, "-m", "vidpipe.stages.jobs.entry", "label", str(videos), "--out", str(out), "--config",
           str(config), "--no-progress", "-q", *(["--ray", address] if address else [])]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800)
    return time.monotonic() - t0


def run_nodes(nodes: int, videos: Path, workdir: Path) -> dict[str, Any]:
    """One `vidpipe label --ray` on a fresh cluster of `nodes` nodes."""
    out = workdir / f"out{nodes}-{videos.name}"
    config = (f"backend:\n  name: sim\n  max_batch: {BATCH}\n  sim:\n    per_image_ms: {SLOW_MS}\n"
              "output:\n  video: false\ncluster:\n  cpus_per_worker: 2\n")
    with ray_cluster(nodes) as address:
        wall = label(videos, out, config, address)
    rows = json.loads((out / "summary.json").read_text())["videos"]
    frames = sum(r["frames"] for r in rows)
    labeling = sum(r["labeling_s"] for r in rows)
    return {"nodes": nodes, "wall_s": round(wall, 2), "frames": frames, "fps": round(frames / wall, 1),
            "card_max_fps": round(card_fps() * nodes, 1), "labeling_s_sum": round(labeling, 2),
            "overhead_s_per_video": round((wall * nodes - labeling) / len(rows), 2),
            "hosts": sorted({r["host"] for r in rows})}


def per_video_costs(workdir: Path, sets: tuple[int, int], repeat: int) -> dict[str, Any]:
    """Each mode on both sets of short videos, side by side on one 1-node cluster, `repeat` times
    (the median wall of each); see the module docstring."""
    clip = ensure_clip(ClipSpec(160, 120, SHORT_FRAMES, 25))
    folders = {n: stream_links(clip, n, workdir, f"short{n}")[0].parent for n in sets}
    base = f"backend:\n  name: sim\n  max_batch: {BATCH}\noutput:\n  video: false\n"
    samples: dict[str, list[list[float]]] = {mode: [[], []] for mode in MODES}
    with ray_cluster(1) as address:
        for i, cluster in enumerate(MODES.values()):  # not counted: a fresh cluster's first jobs start slower
            label(folders[sets[0]], workdir / f"warm-up-{i}", base + (cluster or ""), address if cluster else None)
        for r in range(repeat):
            for k, n in enumerate(sets):
                for i, (mode, cluster) in enumerate(MODES.items()):
                    wall = label(folders[n], workdir / f"short{n}-{i}-{r}", base + (cluster or ""),
                                 address if cluster else None)
                    samples[mode][k].append(round(wall, 2))
    walls = {mode: [statistics.median(s) for s in both] for mode, both in samples.items()}
    slope = {mode: (w[1] - w[0]) / (sets[1] - sets[0]) for mode, w in walls.items()}
    overhead = slope["warm workers"] - slope["local job"]
    return {"sets": list(sets), "frames": SHORT_FRAMES, "repeat": repeat, "wall_s": walls, "wall_s_samples": samples,
            "s_per_video": {m: round(v, 3) for m, v in slope.items()},
            "warm_overhead_s_per_video": round(overhead, 3), "target_s": TARGET_S, "met": overhead <= TARGET_S}


def short_table(r: dict[str, Any]) -> str:
    n1, n2 = r["sets"]
    lines = [f"Short videos on 1 node ({n1} and {n2} videos x {r['frames']} frames, 160x120, sim card, no annotated "
             f"video), measured side by side, median of {r['repeat']}:",
             f"{'mode':<14}  {f'wall {n1} s':>9}  {f'wall {n2} s':>9}  {'s/video':>7}  {'vs local s':>10}"]
    local = r["s_per_video"]["local job"]
    for mode, walls in r["wall_s"].items():
        cost = r["s_per_video"][mode]
        lines.append(f"{mode:<14}  {walls[0]:>9.2f}  {walls[1]:>9.2f}  {cost:>7.3f}  {cost - local:>+10.3f}")
    verdict = "met" if r["met"] else "MISSED"
    lines.append(f"warm workers' overhead per video over a local job's: {r['warm_overhead_s_per_video']:+.3f} s "
                 f"(target <= {r['target_s']} s): {verdict}")
    warm, task = r["wall_s"]["warm workers"][1], r["wall_s"]["one per task"][1]
    lines.append(f"{n2} videos: warm workers {task / warm:.2f}x faster than one video per task")
    return "\n".join(lines)


def table(results: list[dict[str, Any]]) -> str:
    base = results[0]["fps"]
    lines = [f"Ray nodes on one machine ({VIDEOS} videos x {FRAMES} frames, sim card at {SLOW_MS} ms/image, "
             f"batch {BATCH}: {card_fps():.0f} fps per card)",
             f"{'nodes':>5}  {'wall s':>7}  {'fps':>7}  {'x 1 node':>8}  {'card max':>8}  {'x card max':>10}  "
             f"{'overhead/video s':>16}"]
    for r in results:
        lines.append(f"{r['nodes']:>5}  {r['wall_s']:>7.2f}  {r['fps']:>7.1f}  {r['fps'] / base:>8.2f}  "
                     f"{r['card_max_fps']:>8.1f}  {r['fps'] / r['card_max_fps']:>10.2f}  "
                     f"{r['overhead_s_per_video']:>16.2f}")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    nodes = [r["nodes"] for r in results]
    ax.bar([n - 0.2 for n in nodes], [r["fps"] for r in results], width=0.4, label="measured")
    ax.bar([n + 0.2 for n in nodes], [r["card_max_fps"] for r in results], width=0.4, label="card max x nodes")
    ax.set_xlabel("Ray nodes")
    ax.set_ylabel("frames per second")
    ax.set_xticks(nodes)
    ax.legend()
    ax.set_title("vidpipe label --ray: throughput by nodes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_costs(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    modes = list(r["s_per_video"])
    ax.bar(modes, [r["s_per_video"][m] for m in modes], color=["tab:gray", "tab:blue", "tab:orange"])
    ax.axhline(r["s_per_video"]["local job"] + r["target_s"], color="tab:red", linestyle="--",
               label=f"target: local + {r['target_s']} s")
    ax.set_ylabel("seconds per video (slope)")
    ax.set_title(f"short videos ({r['frames']} frames) on 1 Ray node: cost per video")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ray_nodes", description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, nargs="*", default=[1, 2, 3],
                   help="node counts of the first table (none: skip it)")
    p.add_argument("--short", type=int, nargs=2, default=list(SHORT_SETS), metavar=("FEW", "MANY"),
                   help="the two numbers of short videos the per-video cost is measured between")
    p.add_argument("--repeat", type=int, default=3, help="runs of each mode and set (the median counts)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-ray-") as tmp:
        workdir = Path(tmp)
        # distinct paths (hard links): vidpipe labels a file given twice once
        videos = stream_links(ensure_clip(ClipSpec(160, 120, FRAMES, 25)), VIDEOS, workdir, "videos")[0].parent
        results = []
        for n in args.nodes:
            print(f"ray: {n} node(s) ...", flush=True)
            results.append(run_nodes(n, videos, workdir))
        print("ray: short videos: a local job, warm workers, one video per task ...", flush=True)
        costs = per_video_costs(workdir, (args.short[0], args.short[1]), args.repeat)
    text = (table(results) + "\n\n" if results else "") + short_table(costs)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray_nodes.json").write_text(json.dumps({"nodes": results, "short_videos": costs}, indent=1))
    (args.out / "ray_nodes.txt").write_text(text + "\n")
    if results:
        plot(results, args.out / "ray_nodes.png")
    plot_costs(costs, args.out / "ray_warm.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

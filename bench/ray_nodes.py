"""`python -m bench.ray_nodes` (`make bench-ray`): labeling one folder on 1, 2 and 3 Ray nodes.

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
                 negative when a task labels several videos at once (their labeling times overlap)

Then many short videos (SHORT_VIDEOS x SHORT_FRAMES) on one node, side by side: one video per
Ray task (cluster.task_frames 0) against the default grouping (short videos share a task, so the
worker's graph starts once per task): the ratio of their fps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.inputs import ClipSpec, ensure_clip
from bench.scaling import stream_links
from bench.throughput import sim_max_fps

SLOW_MS = 10.0  # per image: the card does 8 / (1.5 + 8 x 10) ms = ~98 fps at batch 8
BATCH = 8
VIDEOS, FRAMES = 6, 400
SHORT_VIDEOS, SHORT_FRAMES = 24, 50
OUT = Path(__file__).resolve().parent / "results"


def card_fps() -> float:
    return sim_max_fps(BATCH, SLOW_MS)


def run_nodes(nodes: int, videos: Path, workdir: Path, task_frames: int | None = None) -> dict[str, Any]:
    """One `vidpipe label --ray` on a fresh cluster of `nodes` nodes; task_frames None: the default."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    out = workdir / f"out{nodes}-{videos.name}-{task_frames}"
    config = workdir / "slow.yaml"
    config.write_text(f"backend:\n  name: sim\n  max_batch: {BATCH}\n  sim:\n    per_image_ms: {SLOW_MS}\n"
                      "output:\n  video: false\ncluster:\n  cpus_per_worker: 2\n"
                      + (f"  task_frames: {task_frames}\n" if task_frames is not None else ""))
    try:
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", "vidpipe.stages.jobs.entry", "label", str(videos), "--out", str(out), "--config",
               str(config), "--ray", cluster.address, "--no-progress", "-q"]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800)
        wall = time.monotonic() - t0
    finally:
        cluster.shutdown()
    rows = json.loads((out / "summary.json").read_text())["videos"]
    frames = sum(r["frames"] for r in rows)
    labeling = sum(r["labeling_s"] for r in rows)
    return {"nodes": nodes, "wall_s": round(wall, 2), "frames": frames, "fps": round(frames / wall, 1),
            "card_max_fps": round(card_fps() * nodes, 1), "labeling_s_sum": round(labeling, 2),
            "overhead_s_per_video": round((wall * nodes - labeling) / len(rows), 2),
            "hosts": sorted({r["host"] for r in rows})}


def short_table(one_each: dict[str, Any], grouped: dict[str, Any]) -> str:
    return "\n".join([
        f"{SHORT_VIDEOS} short videos x {SHORT_FRAMES} frames on 1 node, measured side by side:",
        f"  one video per task: {one_each['wall_s']:.2f} s, {one_each['fps']:.1f} fps, "
        f"overhead/video {one_each['overhead_s_per_video']:.2f} s",
        f"  grouped (default):  {grouped['wall_s']:.2f} s, {grouped['fps']:.1f} fps, "
        f"overhead/video {grouped['overhead_s_per_video']:.2f} s",
        f"  grouped / one per task: {grouped['fps'] / one_each['fps']:.2f}x",
    ])


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ray_nodes", description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-ray-") as tmp:
        workdir = Path(tmp)
        # distinct paths (hard links): vidpipe labels a file given twice once
        videos = stream_links(ensure_clip(ClipSpec(160, 120, FRAMES, 25)), VIDEOS, workdir, "videos")[0].parent
        short_clip = ensure_clip(ClipSpec(160, 120, SHORT_FRAMES, 25))
        shorts = stream_links(short_clip, SHORT_VIDEOS, workdir, "shorts")[0].parent
        results = []
        for n in args.nodes:
            print(f"ray: {n} node(s) ...", flush=True)
            results.append(run_nodes(n, videos, workdir))
        print("ray: short videos, one per task and grouped ...", flush=True)
        one_each, grouped = run_nodes(1, shorts, workdir, task_frames=0), run_nodes(1, shorts, workdir)
    text = table(results) + "\n\n" + short_table(one_each, grouped)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray_nodes.json").write_text(json.dumps({"nodes": results, "short_videos": {
        "one_per_task": one_each, "grouped": grouped}}, indent=1))
    (args.out / "ray_nodes.txt").write_text(text + "\n")
    plot(results, args.out / "ray_nodes.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

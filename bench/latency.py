"""Latency: one live-paced 30 fps source on sim, end to end (capture -> result written), at
normal load and at 2x overload.

Each run is the real command line, `vidpipe run CONFIG` in a subprocess, with the clip played as a
camera (`live.sources[].realtime`: paced at its frame rate); latencies come from the per-frame
`latency_ms` of the live JSONL segments, labeled fps from its capture times, drops by reason from the
line the live outputs log when a stream ends. Overload: the sim card is slowed to half the source
rate (66.7 ms per image, i.e. 15 fps for a 30 fps source): latency must stay bounded by the live
policies (newest frame only at the source, stale frames dropped before preprocessing, one batch
in flight and the newest frames first at the batcher, frames too late for the budget dropped
there) and every frame not labeled is counted as dropped, by reason.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.runner import REPO
from vidpipe.stages.live_files import segments

WARMUP_S = 1.0  # frames of the first second are left out: stage processes are still starting
DROPS_LINE = re.compile(r"drops by reason: (\{[^}]*\})")  # logged by stages.outputs.live when a stream ends
LIVE_BACKEND = {"name": "sim", "max_batch": 4, "batch_timeout_ms": 2.0}  # as configs/live-camera.yaml


@dataclass(frozen=True)
class LatencyRun:
    name: str
    source_fps: float
    card_fps: float  # what the (sim) card can do at batch 1
    frames_in: int  # frames in the clip
    labeled: int
    dropped: int  # frames_in - labeled: overwritten at the source or dropped as stale
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    breakdown_ms: dict[str, float] = field(default_factory=dict)  # median per stage
    wall_s: float = 0.0
    labeled_fps: float = 0.0  # labeled frames per second of capture time, after the warm-up
    drops: dict[str, int] = field(default_factory=dict)  # by reason, as the live outputs count them

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _live_job(clip: Path, out_dir: Path, sim: dict[str, float]) -> dict[str, Any]:
    return {
        "job": "live",
        "live": {"sources": [{"uri": str(clip), "realtime": True}], "http": False, "status_interval_s": 0,
                 "jsonl": True},
        "output": {"dir": str(out_dir)},
        "backend": {**LIVE_BACKEND, "sim": sim},
    }


def run_live(name: str, clip: Path, frames_in: int, fps: float, workdir: Path, sim: dict[str, float]) -> LatencyRun:
    out_dir = Path(tempfile.mkdtemp(prefix="live-", dir=workdir))
    config = out_dir / "live.yaml"
    config.write_text(json.dumps(_live_job(clip, out_dir, sim)))  # JSON is YAML
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "vidpipe.stages.jobs.cli", "run", str(config)], cwd=REPO, timeout=600,
                          stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"live bench run {name!r} failed (exit code {proc.returncode}): {proc.stderr[-2000:]}")
    found = DROPS_LINE.search(proc.stderr)
    drops = json.loads(found.group(1)) if found else {}
    lines = [json.loads(line) for path in segments(out_dir, clip.stem) for line in path.read_text().splitlines()
             if line]
    steady = [rec for rec in lines if rec["t"] >= WARMUP_S] or lines
    lat = np.asarray([rec["latency_ms"] for rec in steady])
    stages = ("preprocess", "queue", "infer", "sink")
    breakdown = {k: statistics.median(rec["timings_ms"][k] for rec in steady) for k in stages if steady}
    card_fps = 1000.0 / (sim["base_ms"] + sim["per_image_ms"])
    p50, p95, p99 = (float(np.percentile(lat, q)) for q in (50, 95, 99))
    span = steady[-1]["t"] - steady[0]["t"] if len(steady) > 1 else 0.0
    labeled_fps = (len(steady) - 1) / span if span > 0 else 0.0
    return LatencyRun(name, fps, card_fps, frames_in, len(lines), frames_in - len(lines), p50, p95, p99,
                      float(lat.max()), breakdown, wall, labeled_fps, drops)


def run(clip: Path, frames_in: int, fps: float, workdir: Path) -> list[LatencyRun]:
    normal = {"base_ms": 1.5, "per_image_ms": 0.5}
    half = 2 * 1000.0 / fps  # one image takes two source frame periods: the card runs at fps / 2
    overload = {"base_ms": 0.0, "per_image_ms": half}
    print("latency: live 30 fps source on sim ...", flush=True)
    runs = [run_live("live 30 fps, sim", clip, frames_in, fps, workdir, normal)]
    print("latency: 2x overload ...", flush=True)
    runs.append(run_live("live 30 fps, sim at 15 fps (2x overload)", clip, frames_in, fps, workdir, overload))
    return runs

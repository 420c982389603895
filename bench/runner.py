"""Launch one timed vidpipe run (bench.vidpipe_run in a fresh interpreter) and measure it.

    run = run_vidpipe("sim b32", [clip], {"backend": {"name": "sim", "max_batch": 32}}, workdir)
    run.total_fps, run.steady_fps, run.startup_s, run.rss_mb, run.shm_mb ...

Total = frames / (launch of the interpreter -> its exit): interpreter start, imports, process
spawns, decode, labeling, teardown; nothing is hidden. Steady = the rate at which the sink wrote
frames between 10% and 90% of the run (start-up and drain excluded).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.procmon import TreeMonitor

BASE_JOB: dict[str, Any] = {
    "job": "label",
    "output": {"jsonl": True, "segments": False, "video": False, "progress": False},
    "backend": {"name": "sim", "max_batch": 32},
}


@dataclass(frozen=True)
class VidpipeRun:
    name: str
    frames: int
    total_s: float
    total_fps: float
    steady_fps: float
    startup_s: float  # launch -> first frame written
    rss_mb: float
    rss_private_mb: float
    shm_mb: float
    processes: int
    cpu_s: dict[str, float] = field(default_factory=dict)  # per process, whole run
    cpu_ms_per_frame: dict[str, float] = field(default_factory=dict)  # per process, steady state
    foreign_load: float = 0.0  # cores used by other processes on the machine meanwhile (noise)
    card_busy: float = 0.0  # share of the steady window the accelerator was computing
    plan: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of two config mappings (extra wins)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def steady_window(times: list[float], lo: float = 0.1, hi: float = 0.9) -> tuple[int, int]:
    """Indices of the writes at the lo and hi fractions of the run."""
    n = len(times)
    return int(lo * n), max(int(hi * n) - 1, 0)


def steady_rate(times: list[float], lo: float = 0.1, hi: float = 0.9) -> float:
    """Frames per second between the lo and hi fractions of the writes."""
    a, b = steady_window(times, lo, hi)
    if b <= a or times[b] <= times[a]:
        return 0.0
    return (b - a) / (times[b] - times[a])


def run_vidpipe(name: str, inputs: list[Path], job: dict[str, Any], workdir: Path,
                timeout_s: float = 600.0) -> VidpipeRun:
    """Run vidpipe on `inputs` with `job` merged over BASE_JOB; outputs go under `workdir`."""
    out_dir = Path(tempfile.mkdtemp(prefix="out-", dir=workdir))
    spec_job = merge(BASE_JOB, job)
    spec_job["inputs"] = [str(p) for p in inputs]
    spec_job.setdefault("output", {})["dir"] = str(out_dir)
    spec_path, result_path = out_dir / "spec.json", out_dir / "result.json"
    spec_path.write_text(json.dumps({"job": spec_job}))
    cmd = [sys.executable, "-m", "bench.vidpipe_run", str(spec_path), str(result_path)]
    t_launch = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent.parent)
    with TreeMonitor(proc.pid) as mon:
        code = proc.wait(timeout_s)
    t_exit = time.monotonic()
    if code != 0 or not result_path.is_file():
        raise RuntimeError(f"bench run {name!r} failed (exit code {code}): {' '.join(cmd)}")
    res = json.loads(result_path.read_text())
    if res["errors"]:
        raise RuntimeError(f"bench run {name!r}: {res['errors']}")
    times: list[float] = res["times"]
    stats = mon.stats()
    a, b = steady_window(times)
    window = mon.cpu_between(times[a], times[b]) if b > a else {}
    total = t_exit - t_launch
    return VidpipeRun(
        name=name,
        frames=res["frames"],
        total_s=total,
        total_fps=res["frames"] / total,
        steady_fps=steady_rate(times),
        startup_s=(times[0] - t_launch) if times else total,
        rss_mb=stats.rss_mb,
        rss_private_mb=stats.rss_private_mb,
        shm_mb=stats.shm_mb,
        processes=stats.processes,
        cpu_s=stats.cpu_s,
        cpu_ms_per_frame={k: 1e3 * v / (b - a) for k, v in window.items()} if b > a else {},
        foreign_load=mon.foreign_load(t_launch, t_exit),
        card_busy=sum(res["compute"][a:b]) / (times[b] - times[a]) if b > a else 0.0,
        plan=res["plan"],
    )

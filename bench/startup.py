"""Start-up: what a job pays once, and what each more file costs.

* imports: a fresh interpreter importing the graph and the file source (what every spawned stage
  process pays; `python -c ...`, best of 3);
* a spawned process: multiprocessing's spawn of a process that imports the file source and exits
  (each of a job's decode workers is one of these);
* model load: the cpu model's onnxruntime session (CpuModel()) and its first batch of 8;
* a job of many small files: vidpipe (sim, JSONL, the job's defaults) on 1 and on N short clips:
  the graph (preprocess workers, infer with its card or model, sink, a few decode workers) starts
  once per job and the files go through its decode workers, so per added file =
  (total(N) - total(1)) / (N - 1).
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.runner import REPO, VidpipeRun, run_vidpipe
from bench.scaling import stream_links

IMPORTS = "import stages.jobs.graph, stages.sources.files"


@dataclass(frozen=True)
class StartupResult:
    imports_s: float
    spawn_s: float
    model_s: float | None  # None: no cpu model built
    first_batch_s: float | None
    files: int
    frames_per_file: int
    one: VidpipeRun
    many: VidpipeRun

    @property
    def per_file_s(self) -> float:
        return (self.many.total_s - self.one.total_s) / max(self.files - 1, 1)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["one"], out["many"] = self.one.to_json(), self.many.to_json()
        return {**out, "per_file_s": self.per_file_s}


def _import_source() -> None:
    import vidpipe.stages.sources.files  # noqa: F401


def time_imports() -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", IMPORTS], cwd=REPO, check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def time_spawn() -> float:
    ctx = multiprocessing.get_context("spawn")
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        proc = ctx.Process(target=_import_source)
        proc.start()
        proc.join(60)
        best = min(best, time.perf_counter() - t0)
    return best


def time_model() -> tuple[float | None, float | None]:
    from bench.throughput import have_cpu_model

    if not have_cpu_model():
        return None, None
    import numpy as np

    from vidpipe.hw.base import INPUT_DTYPE, INPUT_SHAPE
    from vidpipe.hw.cpu import CpuModel

    t0 = time.perf_counter()
    model = CpuModel()
    t1 = time.perf_counter()
    model.classify(np.zeros((8, *INPUT_SHAPE), INPUT_DTYPE))
    return t1 - t0, time.perf_counter() - t1


def run(clip: Path, frames: int, workdir: Path, quick: bool) -> StartupResult:
    print("startup: imports, spawn, model load, many small files ...", flush=True)
    imports, spawn = time_imports(), time_spawn()
    model, first = time_model()
    n = 3 if quick else 16
    links = stream_links(clip, n, workdir, "small-files")
    job = {"backend": {"max_batch": "auto"}}
    one = run_vidpipe("1 small file", links[:1], job, workdir)
    many = run_vidpipe(f"{n} small files", links, job, workdir)
    return StartupResult(imports, spawn, model, first, n, frames, one, many)

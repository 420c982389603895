"""Throughput: vidpipe against the decode ceiling and the naive loop, on each input, in one run.

Rows per input: decode ceiling, naive loop (sim, batch 1), vidpipe on sim at batch 1 / 8 / 32
(JSONL only), batch 32 with the annotated H.264 video, batch 256 (the card's asymptotic rate is
2000 fps; 1958 fps needs batch >= 140 on the sim timing model), the defaults of `vidpipe label
--backend sim` (batch chosen by the job) with and without the annotated video, vidpipe on cpu
(batch 8 and the default) and the bare onnxruntime loop on the same, already decoded, tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.baselines import (
    Baseline,
    bare_onnx_loop,
    best_of,
    decode_ceiling,
    decoded_tensors,
    naive_sim_loop,
    preprocess_cpu_ms,
)
from bench.runner import VidpipeRun, repeat_vidpipe
from vidpipe.hw.paths import default_model_path
from vidpipe.hw.settings import BackendSettings, SimSettings
from vidpipe.hw.sim import SimBackend
from vidpipe.stages.config import FILE_BATCH

CPU_BATCH = 8
ONNX_FRAMES = 384  # tensors for the bare onnxruntime loops (decoded once, held in memory): 3 batches of 128


@dataclass(frozen=True)
class Config:
    label: str
    job: dict[str, Any]
    sim_batch: int = 0  # the sim card's batch size (for its modeled maximum), 0: not on sim
    repeat: bool = True  # repeated (best kept); the slow, informative runs run once
    default: bool = False  # the job's own defaults (batch chosen by the job)


def sim_max_fps(batch: int, per_image_ms: float = SimSettings.per_image_ms) -> float:
    """The sim card's throughput with full batches of `batch` (one compute unit)."""
    settings = BackendSettings(name="sim", max_batch=batch, sim=SimSettings(per_image_ms=per_image_ms))
    return batch / SimBackend(settings).latency_s(batch)


def configs(quick: bool) -> list[Config]:
    def sim(batch: int, video: bool = False, fork: bool = False) -> Config:
        label = f"vidpipe sim b{batch}" + (" +H.264" if video else "") + (" (fork)" if fork else "")
        job = {"backend": {"name": "sim", "max_batch": batch}, "output": {"video": video},
               "runtime": {"start_method": "fork" if fork else "spawn"}}
        return Config(label, job, batch, repeat=batch >= 8 and not video and not fork)

    def default(name: str, video: bool) -> Config:
        label = f"vidpipe {name} default b{FILE_BATCH}" + (" +H.264" if video else "")
        job = {"backend": {"name": name, "max_batch": "auto"}, "output": {"video": video}}
        return Config(label, job, FILE_BATCH if name == "sim" else 0, repeat=name == "sim", default=True)

    cpu = Config(f"vidpipe cpu b{CPU_BATCH}", {"backend": {"name": "cpu", "max_batch": CPU_BATCH}}, repeat=False)
    if quick:
        return [sim(8), default("sim", False), default("sim", True), cpu]
    # fork: the same run with the stage processes forked instead of spawned (start-up cost)
    return [sim(1), sim(8), sim(32), sim(32, fork=True), sim(32, video=True), sim(256), default("sim", False),
            default("sim", True), cpu, default("cpu", False)]


@dataclass
class InputResult:
    input: str
    ceiling: Baseline
    naive: Baseline
    runs: list[tuple[Config, VidpipeRun]] = field(default_factory=list)
    onnx: Baseline | None = None
    onnx_default: Baseline | None = None  # the same at the job's default batch (the cpu CPU bound)
    preprocess_cpu_ms: float = 0.0  # the resize alone, per frame (bare)

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "ceiling": self.ceiling.to_json(),
            "naive": self.naive.to_json(),
            "onnx": self.onnx.to_json() if self.onnx else None,
            "onnx_default": self.onnx_default.to_json() if self.onnx_default else None,
            "preprocess_cpu_ms": self.preprocess_cpu_ms,
            "runs": [{"label": c.label, "sim_batch": c.sim_batch,
                      "sim_max_fps": sim_max_fps(c.sim_batch) if c.sim_batch else None, **r.to_json()}
                     for c, r in self.runs],
        }


def have_cpu_model() -> bool:
    return default_model_path().is_file()


def run_input(name: str, clip: Path, workdir: Path, quick: bool, repeat: int) -> InputResult:
    print(f"throughput {name}: baselines ...", flush=True)
    result = InputResult(
        name,
        best_of([decode_ceiling(clip) for _ in range(repeat)]),
        naive_sim_loop(clip),  # slow and steady (the card's 2 ms per frame dominates): once
    )
    for cfg in configs(quick):
        if cfg.job["backend"]["name"] == "cpu" and not have_cpu_model():
            print(f"  {cfg.label}: skipped, no cpu model (make model)")
            continue
        print(f"  {cfg.label} ...", flush=True)
        runs = repeat if cfg.repeat else 1
        result.runs.append((cfg, repeat_vidpipe(cfg.label, [clip], cfg.job, workdir, runs)))
    if have_cpu_model():
        tensors = decoded_tensors(clip, 64 if quick else ONNX_FRAMES)
        result.onnx = bare_onnx_loop(tensors, CPU_BATCH)
        result.onnx_default = bare_onnx_loop(tensors, min(FILE_BATCH, len(tensors)))
    result.preprocess_cpu_ms = preprocess_cpu_ms(clip, 64 if quick else ONNX_FRAMES)
    return result


def run(clips: dict[str, Path], workdir: Path, quick: bool, repeat: int) -> list[InputResult]:
    return [run_input(name, clip, workdir, quick, repeat) for name, clip in clips.items()]

"""The projection: the default annotated job on a bigger host, from the CPU this run measured.

Model (printed with the numbers). Every process of the graph spends, per frame, the CPU measured
for its kind in the default annotated run (steady state, bench.runner: ms of CPU per frame, all
its threads), and one process uses at most one core. On a host of C cores with the job's
defaults and a job of at least N files: N = max(2, C // 2) files open at once (one decode and
one encoder process each, x264 one thread each), W = C preprocess workers, one infer process
(one card), one sink. Then

    fps <= C / (CPU of every process per frame)      the cores
    fps <= N / decode,  N / encode                   one core per decode / encoder process
    fps <= W / preprocess,  1 / infer,  1 / sink
    fps <= card(batch)                               the sim card at the default batch

and the projection is the smallest; the bound that binds is named. The same model for this host
and this run's structure (its cores, one file) is printed beside the measured rate, as a check.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.runner import VidpipeRun

GROUPS = ("decode", "preprocess", "infer", "sink", "encode")


def per_group_ms(run: VidpipeRun) -> dict[str, float]:
    """CPU ms per frame by process kind (processes of a kind summed), the rest as `other`."""
    out = dict.fromkeys((*GROUPS, "other"), 0.0)
    for name, ms in run.cpu_ms_per_frame.items():
        key = next((g for g in GROUPS if name.startswith(f"vp:{g}")), "other")
        out[key] += ms
    return out


@dataclass(frozen=True)
class Projection:
    cores: int
    files: int  # open at once: decode and encoder processes
    workers: int  # preprocess processes
    card_fps: float
    bounds: dict[str, float]  # name -> fps it allows

    @property
    def fps(self) -> float:
        return min(self.bounds.values())

    @property
    def binding(self) -> str:
        return min(self.bounds, key=lambda k: self.bounds[k])

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(self.bounds.items(), key=lambda kv: kv[1]))
        return (f"{self.cores} cores, {self.files} files open, {self.workers} workers: {self.fps:,.0f} fps "
                f"({self.binding} binds; {parts})")


def project(ms: dict[str, float], cores: int, files: int, workers: int, card_fps: float) -> Projection:
    def rate(n: float, cost: float) -> float:
        return n * 1e3 / cost if cost > 0 else float("inf")  # (a stage that costs nothing: no bound)

    if sum(ms.values()) <= 0:  # nothing measured (a run too short for a steady window): no projection
        return Projection(cores, files, workers, card_fps, {"not measured": 0.0})
    bounds = {
        "cores": rate(cores, sum(ms.values())),
        "decode": rate(files, ms["decode"]),
        "encode": rate(files, ms["encode"]) if ms["encode"] else float("inf"),
        "preprocess": rate(workers, ms["preprocess"]),
        "infer": rate(1, ms["infer"]),
        "sink": rate(1, ms["sink"]),
        "card": card_fps,
    }
    return Projection(cores, files, workers, card_fps, bounds)

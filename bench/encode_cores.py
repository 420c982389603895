"""Every core on one file's annotated video (#20): the default annotated job (sim) on one long
640x360 file on one core and on all of them, side by side in one run (the process's CPU
affinity, inherited by every process it starts, as `taskset -c 0` would set it), and the same
on all cores with splitting off (`output.video_chunk_frames: 0`, the one-encoder path) as the
before. Rates are launch -> exit (the join at the end included); cores = CPU of the whole process
tree / wall time. Then one 1080p file split on all cores gives the per-chunk costs (encoder CPU
per frame, the join per frame, timed here on the published file) for the 16-core projection of
one long 1080p file.

    python -m bench.encode_cores [--repeat 2]   # alone: prints the rows, writes JSON + PNG to bench/results
    python -m bench --only encode               # within the bench (its --repeat: best of, in turn)
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.decode_cores import _on
from bench.inputs import ClipSpec, ensure_clip
from bench.projection import Projection, per_group_ms, project
from bench.runner import VidpipeRun, run_vidpipe
from bench.throughput import sim_max_fps
from vidpipe.stages.config import FILE_BATCH, default_open_sources
from vidpipe.stages.outputs.remux import join_chunks

TARGET_RATIO = 1.6  # all cores / one core, total rates, same run
TARGET_CORES = 1.8  # cores used on average by the split run (2-core host)
PROJECT_CORES = 16
LONG = ClipSpec(640, 360, 6000)
LONG_QUICK = ClipSpec(320, 180, 96)
HD = ClipSpec(1920, 1080, 600)
HD_CHUNK = 100  # frames per chunk of the 1080p run: 6 chunks of its 600 frames
JOB: dict[str, Any] = {"backend": {"name": "sim", "max_batch": "auto"}, "output": {"video": True, "segments": True}}


@dataclass(frozen=True)
class EncodeCoresResult:
    input: str
    cores: int
    one: VidpipeRun  # one core (one encoder: no split)
    every: VidpipeRun  # all cores, split
    unsplit: VidpipeRun  # all cores, video_chunk_frames 0
    hd: VidpipeRun | None  # 1080p, split, all cores (the per-chunk costs)
    hd_join_ms: float  # the join's wall time per frame of the 1080p file

    @property
    def ratio(self) -> float:
        return self.every.total_fps / self.one.total_fps

    @staticmethod
    def cores_used(run: VidpipeRun) -> float:
        return sum(run.cpu_s.values()) / run.total_s

    def to_json(self) -> dict[str, Any]:
        proj = self.projection()
        return {"input": self.input, "cores": self.cores, "one": self.one.to_json(), "every": self.every.to_json(),
                "unsplit": self.unsplit.to_json(), "hd": self.hd.to_json() if self.hd else None,
                "hd_join_ms": self.hd_join_ms, "ratio": self.ratio,
                "cores_used": {k: self.cores_used(getattr(self, k)) for k in ("one", "every", "unsplit")},
                "projection": None if proj is None else asdict(proj) | {"fps": proj.fps, "binding": proj.binding}}

    def projection(self) -> Projection | None:
        """One long 1080p file on PROJECT_CORES cores: one decode process, chunks on every core."""
        if self.hd is None:
            return None
        ms = per_group_ms(self.hd)
        base = project(ms, PROJECT_CORES, 1, PROJECT_CORES, sim_max_fps(FILE_BATCH))
        if "not measured" in base.bounds:
            return base
        bounds = dict(base.bounds)
        bounds["encode"] = PROJECT_CORES * 1e3 / ms["encode"] if ms["encode"] else float("inf")  # a lane per core
        if self.hd_join_ms:  # chunk 0's encoder joins the chunks as they are done: its rate bounds too
            bounds["join"] = 1e3 / self.hd_join_ms
        return dataclasses.replace(base, bounds=bounds)


def _join_ms(run_out: Path) -> float:
    """The join's cost per frame: the published file remuxed again as one chunk (same packets)."""
    (video,) = run_out.glob("*.mp4")
    target = run_out / "rejoined.mp4"
    t0 = time.perf_counter()
    frames = join_chunks([video], target)
    return 1e3 * (time.perf_counter() - t0) / max(frames, 1)


def run(workdir: Path, quick: bool = False, inputs: Path | None = None, repeat: int = 1) -> EncodeCoresResult:
    """The three runs `repeat` times, in turn (other work on the machine hits each alike), the
    fastest of each kept; then the 1080p run (full mode)."""
    spec = LONG_QUICK if quick else LONG
    clip = ensure_clip(spec, inputs)
    chunk = {"output": {"video_chunk_frames": 24}} if quick else {}
    every = os.sched_getaffinity(0)
    one = {min(every)}
    print(f"encode cores: {clip.name}, annotated default on one core and on {len(every)} ...", flush=True)
    configs = [("annotated, 1 core", one, _merge(JOB, chunk)),
               (f"annotated, {len(every)} cores, split", every, _merge(JOB, chunk)),
               (f"annotated, {len(every)} cores, no split", every, _merge(JOB, {"output": {"video_chunk_frames": 0}}))]
    tried: list[list[VidpipeRun]] = [[] for _ in configs]
    for _ in range(max(1, repeat)):
        for runs, (name, cores, job) in zip(tried, configs, strict=True):
            runs.append(_on(cores, run_vidpipe, name, [clip], job, workdir))
    best = [max(runs, key=lambda r: r.total_fps) for runs in tried]
    hd, join_ms = None, 0.0
    if not quick:
        print("encode cores: 1080p split, per-chunk costs ...", flush=True)
        hd_dir = Path(tempfile.mkdtemp(prefix="hd-", dir=workdir))
        hd = run_vidpipe("annotated 1080p, split", [ensure_clip(HD, inputs)],
                         _merge(JOB, {"output": {"video_chunk_frames": HD_CHUNK}}), hd_dir)
        join_ms = _join_ms(next(p for p in hd_dir.iterdir() if p.is_dir()))
    return EncodeCoresResult(spec.name, len(every), best[0], best[1], best[2], hd, join_ms)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    from bench.runner import merge

    return merge(a, b)


def table(r: EncodeCoresResult) -> str:
    from bench.report import table as text_table

    rows = [[run.name, str(run.plan.get("encoders", "-")), f"{run.total_fps:,.0f}", f"{run.steady_fps:,.0f}",
             f"{r.cores_used(run):.2f}", f"{run.total_fps / r.one.total_fps:.2f}x", f"{run.foreign_load:.2f}"]
            for run in (r.one, r.every, r.unsplit)]
    text = (f"Annotated video of one file on 1 and {r.cores} cores, {r.input} (sim, the job's defaults; "
            "total = launch -> exit, the join included)\n"
            + text_table(["run", "encoders", "total fps", "steady fps", "cores used", "vs 1 core",
                          "other load (cores)"], rows))
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in per_group_ms(r.every).items() if v >= 0.01)
    text += f"\nsplit run, CPU ms per frame: {cpu}"
    proj = r.projection()
    if r.hd is not None and proj is not None:
        ms = per_group_ms(r.hd)
        text += (f"\n1080p split ({HD_CHUNK}-frame chunks): encoder {ms['encode']:.2f} ms CPU/frame, decode "
                 f"{ms['decode']:.2f}, join {r.hd_join_ms:.3f} ms/frame; projection, one long 1080p file: "
                 f"{proj.describe()}")
    return text


def targets(r: EncodeCoresResult) -> list[tuple[str, str, str]]:
    used = r.cores_used(r.every)
    out = [(f"annotated default, one {r.input} file: >= {TARGET_RATIO}x its one-core rate and >= {TARGET_CORES} "
            "cores used",
            f"{r.every.total_fps:,.0f} vs {r.one.total_fps:,.0f} fps = {r.ratio:.2f}x; {used:.2f} cores",
            "met" if r.ratio >= TARGET_RATIO and used >= TARGET_CORES else "MISSED")]
    proj = r.projection()
    if proj is not None:
        unsplit = project(per_group_ms(r.hd), PROJECT_CORES, 1, PROJECT_CORES, sim_max_fps(FILE_BATCH)) \
            if r.hd is not None else None
        before = f" (one encoder: {unsplit.bounds['encode']:,.0f})" if unsplit is not None else ""
        out.append((f"projection, {PROJECT_CORES} cores: one long 1080p file (row; "
                    f"{default_open_sources(PROJECT_CORES)} files open reach the card)",
                    f"{proj.fps:,.0f} fps ({proj.binding} binds){before}", "row"))
    return out


def plot(r: EncodeCoresResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = (r.one, r.every, r.unsplit)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
    names = [run.name.removeprefix("annotated, ") for run in runs]
    a.barh(names, [run.total_fps for run in runs], color="tab:blue")
    a.axvline(TARGET_RATIO * r.one.total_fps, color="tab:red", label=f"target {TARGET_RATIO}x one core")
    a.set_xlabel("fps (launch -> exit)")
    a.legend(fontsize=7)
    b.barh(names, [r.cores_used(run) for run in runs], color="tab:green")
    b.axvline(TARGET_CORES, color="tab:red", label=f"target {TARGET_CORES} cores")
    b.set_xlabel("cores used (CPU / wall)")
    b.legend(fontsize=7)
    a.invert_yaxis()
    b.invert_yaxis()
    fig.suptitle(f"one {r.input} file, annotated default (sim)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str]) -> int:
    """`python -m bench.encode_cores [--quick] [--repeat N]`."""
    quick = "--quick" in argv
    repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 1
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-") as tmp:
        result = run(Path(tmp), quick, repeat=repeat)
    print(table(result))
    for row in targets(result):
        print("  ".join(row))
    (out / "encode_cores.json").write_text(json.dumps(result.to_json(), indent=1))
    print(f"written: {out / 'encode_cores.json'}, {plot(result, out / 'encode_cores.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

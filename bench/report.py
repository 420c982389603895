"""Tables on stdout, results.json and PNG plots in the results folder, and the target checks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.baselines import Baseline
from bench.decode_cores import DecodeCoresResult
from bench.decode_cores import table as decode_table
from bench.decode_cores import targets as decode_targets
from bench.encode_cores import EncodeCoresResult
from bench.encode_cores import table as encode_table
from bench.encode_cores import targets as encode_targets
from bench.encoding import EncodingResult
from bench.latency import LatencyRun
from bench.many_files import ManyFilesResult
from bench.many_files import table as many_files_table
from bench.many_files import targets as many_files_targets
from bench.projection import per_group_ms
from bench.report_scale import (
    CARD_MAX_FPS,
    annotated_table,
    cpu_bound_table,
    encoding_table,
    scale_targets,
    startup_table,
)
from bench.runner import VidpipeRun
from bench.scaling import ScalingRun
from bench.startup import StartupResult
from bench.throughput import InputResult, sim_max_fps
from bench.transport import TransportResult


@dataclass
class Results:
    meta: dict[str, Any]
    throughput: list[InputResult]
    latency: list[LatencyRun]
    transport: list[TransportResult]
    scaling: list[ScalingRun]
    encoding: EncodingResult | None = None
    startup: StartupResult | None = None
    files: ManyFilesResult | None = None
    decode: DecodeCoresResult | None = None
    encode: EncodeCoresResult | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "throughput": [r.to_json() for r in self.throughput],
            "latency": [r.to_json() for r in self.latency],
            "transport": [r.to_json() for r in self.transport],
            "scaling": [r.to_json() for r in self.scaling],
            "encoding": self.encoding.to_json() if self.encoding else None,
            "startup": self.startup.to_json() if self.startup else None,
            "files": self.files.to_json() if self.files else None,
            "decode": self.decode.to_json() if self.decode else None,
            "encode": self.encode.to_json() if self.encode else None,
            "targets": [list(t) for t in targets(self)],
        }


# -- tables ---------------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Plain-text table; the first `left` columns are left-aligned, the rest right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" if i < left else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [line.format(*headers), "  ".join("-" * w for w in widths)]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def _f(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _baseline_row(b: Baseline, ceiling: float, naive: float) -> list[str]:
    return [b.name, _f(b.fps), _f(b.fps), _f(b.fps), "-", f"{b.fps / ceiling:.2f}", f"{b.fps / naive:.2f}",
            "-", "-", "-", "-", "-"]


def _run_row(label: str, r: VidpipeRun, sim_batch: int, ceiling: float, naive: float) -> list[str]:
    lat = f"{r.latency_ms.get('p50', 0):.0f}/{r.latency_ms.get('p99', 0):.0f}" if r.latency_ms else "-"
    return [label, _f(r.steady_fps), _f(r.steady_fps_cold), _f(r.total_fps), f"{r.startup_s:.2f}/{r.shutdown_s:.2f}",
            f"{r.steady_fps / ceiling:.2f}",
            f"{r.steady_fps / naive:.2f}", _f(sim_max_fps(sim_batch)) if sim_batch else "-",
            f"{min(r.card_busy, 1.0):.0%}" if sim_batch else "-", lat, f"{r.rss_mb:,.0f}/{r.rss_private_mb:,.0f}",
            _f(r.shm_mb)]


def throughput_table(res: InputResult) -> str:
    c, n = res.ceiling.fps, res.naive.fps
    rows = [_baseline_row(res.ceiling, c, n), _baseline_row(res.naive, c, n)]
    rows += [_run_row(cfg.label, r, cfg.sim_batch, c, n) for cfg, r in res.runs]
    if res.onnx is not None:
        rows.append(_baseline_row(res.onnx, c, n))
    head = ["run", "steady fps", "10-90% fps", "total fps", "start/end s", "x ceiling", "x naive", "card max",
            "card busy",
            "lat p50/p99 ms", "RSS sum/private MB", "shm MB"]
    text = (f"Throughput, {res.input} ({res.ceiling.frames} frames); steady = 10%..90% of the frames once the "
            f"frame ring is warm, 10-90% = the same window with its warm-up; ratios on steady\n" + table(head, rows))
    cpu = next((r for cfg, r in res.runs if cfg.sim_batch == 0), None)
    if cpu is not None and res.onnx is not None:
        text += f"\nvidpipe cpu / bare onnxruntime (same batch): {cpu.steady_fps / res.onnx.fps:.2f}"
    return text


def cpu_table(results: list[InputResult]) -> str:
    """Where the CPU goes in steady state: ms of CPU per frame and process."""
    rows = []
    for res in results:
        for cfg, r in res.runs:
            groups = per_group_ms(r)
            rows.append([f"{res.input} {cfg.label}", *(f"{v:.3f}" for v in groups.values()),
                         f"{sum(groups.values()):.3f}", f"{r.foreign_load:.2f}"])
    head = ["run", "decode", "preprocess", "infer", "sink", "encode", "other", "total", "other load (cores)"]
    return "CPU ms per frame in steady state (2 cores = 2 ms of CPU per ms)\n" + table(head, rows)


def latency_table(runs: list[LatencyRun]) -> str:
    rows = [[r.name, _f(r.source_fps), _f(r.card_fps), str(r.frames_in), str(r.labeled), _f(r.labeled_fps, 1),
             str(r.dropped), " ".join(f"{k} {v}" for k, v in r.drops.items() if v) or "-",
             _f(r.p50_ms, 1), _f(r.p95_ms, 1), _f(r.p99_ms, 1), _f(r.max_ms, 1),
             "/".join(f"{r.breakdown_ms.get(k, 0):.1f}" for k in ("preprocess", "queue", "infer", "sink"))]
            for r in runs]
    head = ["run", "source fps", "card fps", "frames", "labeled", "labeled fps", "dropped", "drops by reason",
            "p50 ms", "p95 ms", "p99 ms", "max ms", "median pre/queue/infer/sink ms"]
    return "Latency, live-paced source, capture -> result written (after 1 s warm-up)\n" + table(head, rows)


def transport_table(results: list[TransportResult]) -> str:
    queue = {r.payload: r for r in results if r.method == "multiprocessing.Queue"}
    rows = []
    for r in results:
        q = queue.get(r.payload)
        rows.append([r.payload, r.method, _f(r.latency_us, 1), _f(r.streamed_us, 1),
                     f"{q.latency_us / r.latency_us:,.0f}x" if q else "-",
                     f"{q.streamed_us / r.streamed_us:,.0f}x" if q else "-"])
    head = ["payload", "method", "one-way us", "streamed us/frame", "Queue/this (one-way)", "Queue/this (streamed)"]
    return "Transport between two processes, per frame\n" + table(head, rows, left=2)


def scaling_table(runs: list[ScalingRun], clip: str) -> str:
    rows = [[s.axis, str(s.value), str(s.run.frames), _f(s.run.steady_fps), _f(s.run.total_fps),
             f"{min(s.run.card_busy, 1.0):.0%}", f"{sum(s.run.cpu_ms_per_frame.values()):.3f}",
             f"{s.run.rss_mb:,.0f}/{s.run.rss_private_mb:,.0f}", _f(s.run.shm_mb), f"{s.run.foreign_load:.2f}"]
            for s in runs]
    head = ["axis", "n", "frames", "steady fps", "total fps", "card busy", "CPU ms/frame", "RSS sum/private MB",
            "shm MB", "other load"]
    batch = runs[0].run.plan.get("batch", 0) if runs else 0
    return f"Scaling on sim, {clip}, batch {batch} (steady: warm ring, as above)\n" + table(head, rows, left=2)


# -- targets --------------------------------------------------------------------------------------
def _best_sim(res: InputResult) -> tuple[str, VidpipeRun] | None:
    runs = [(c.label, r) for c, r in res.runs if c.sim_batch and not c.job.get("output", {}).get("video")]
    return max(runs, key=lambda lr: lr[1].steady_fps) if runs else None


def targets(results: Results) -> list[tuple[str, str, str]]:
    """(target, measured, met?) rows."""
    out: list[tuple[str, str, str]] = []
    for res in results.throughput:
        best = _best_sim(res)
        if best is None:
            continue
        label, r = best
        c, fps = res.ceiling.fps, r.steady_fps
        if res.input.endswith("1080"):
            goal, ok = ">= 0.9x decode ceiling", fps >= 0.9 * c
        else:
            goal, ok = f">= {CARD_MAX_FPS:.0f} fps (or >= 0.8x ceiling if that is lower)", (
                fps >= CARD_MAX_FPS if c >= CARD_MAX_FPS else fps >= 0.8 * c)
        measured = (f"{label}: {fps:,.0f} fps ({r.steady_fps_cold:,.0f} incl. ring warm-up) = {fps / c:.2f}x "
                    f"ceiling ({c:,.0f}), {fps / res.naive.fps:.1f}x naive")
        out.append((f"{res.input} JSONL: {goal}", measured, "met" if ok else "MISSED"))
    normal = next((r for r in results.latency if "overload" not in r.name), None)
    if normal is not None:
        out.append(("live 30 fps on sim: p99 <= 10 ms", f"p99 {normal.p99_ms:.1f} ms",
                    "met" if normal.p99_ms <= 10 else "MISSED"))
    over = next((r for r in results.latency if "overload" in r.name), None)
    if over is not None:
        counted = sum(over.drops.values()) == over.dropped
        ok = over.p99_ms <= 250 and over.labeled_fps >= 14 and counted
        out.append(("live 30 fps on a 15 fps card: p99 <= 250 ms, >= 14 fps labeled, every drop by reason",
                    f"p99 {over.p99_ms:.1f} ms, {over.labeled_fps:.1f} fps, {sum(over.drops.values())} of "
                    f"{over.dropped} drops by reason", "met" if ok else "MISSED"))
    out += scale_targets(results.throughput, results.encoding, results.startup)
    out += many_files_targets(results.files) if results.files is not None else []
    out += decode_targets(results.decode) if results.decode is not None else []
    out += encode_targets(results.encode) if results.encode is not None else []
    slot = next((t for t in results.transport if t.payload.startswith("1080p") and t.method == "slot hand-off"), None)
    queue = next((t for t in results.transport if t.payload.startswith("1080p") and t.method.startswith("multi")), None)
    if slot is not None and queue is not None:
        ratio = queue.latency_us / slot.latency_us
        ok = slot.latency_us <= 100 and ratio > 100
        measured = f"{slot.latency_us:.0f} us vs {queue.latency_us / 1000:.1f} ms ({ratio:,.0f}x)"
        out.append(("1080p hand-off <= 100 us and > 100x cheaper than a Queue", measured, "met" if ok else "MISSED"))
    return out


def targets_table(results: Results) -> str:
    return "Targets\n" + table(["target", "measured", ""], [list(t) for t in targets(results)], left=3)


def print_all(results: Results) -> str:
    parts = [f"vidpipe benchmarks: {json.dumps(results.meta)}"]
    parts += [throughput_table(r) for r in results.throughput]
    if results.throughput:
        parts.append(cpu_table(results.throughput))
        parts += [t for res in results.throughput for t in (annotated_table(res, results.encoding),
                                                              cpu_bound_table(res)) if t]
    if results.encoding is not None:
        parts.append(encoding_table(results.encoding))
    if results.startup is not None:
        parts.append(startup_table(results.startup))
    if results.files is not None:
        parts.append(many_files_table(results.files))
    if results.decode is not None:
        parts.append(decode_table(results.decode))
    if results.encode is not None:
        parts.append(encode_table(results.encode))
    if results.latency:
        parts.append(latency_table(results.latency))
    if results.transport:
        parts.append(transport_table(results.transport))
    if results.scaling:
        parts.append(scaling_table(results.scaling, results.meta.get("scaling clip", "")))
    parts.append(targets_table(results))
    text = "\n\n".join(parts)
    print(text, flush=True)
    return text


def write(results: Results, folder: Path) -> list[Path]:
    """results.json, tables.txt and the plots; returns the files written."""
    from bench.plots import plot_all

    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "results.json", folder / "tables.txt"]
    written[0].write_text(json.dumps(results.to_json(), indent=1))
    written[1].write_text(print_all(results) + "\n")
    return written + plot_all(results, folder)

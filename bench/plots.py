"""PNG plots of one benchmark run (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from bench.report import Results

CARD_FPS = 1958.0


def plot_throughput(results: Results, path: Path) -> Path:
    n = len(results.throughput)
    fig, axes = plt.subplots(n, 1, figsize=(9, 3.2 * n), squeeze=False)
    for ax, res in zip(axes[:, 0], results.throughput, strict=True):
        labels = [res.ceiling.name, res.naive.name] + [cfg.label for cfg, _ in res.runs]
        values = [res.ceiling.fps, res.naive.fps] + [r.steady_fps for _, r in res.runs]
        totals = [res.ceiling.fps, res.naive.fps] + [r.total_fps for _, r in res.runs]
        if res.onnx is not None:
            labels.append(res.onnx.name)
            values.append(res.onnx.fps)
            totals.append(res.onnx.fps)
        y = range(len(labels))
        ax.barh(y, values, color="tab:blue", label="steady state")
        ax.barh(y, totals, color="tab:orange", height=0.35, label="total (incl. start-up)")
        ax.axvline(CARD_FPS, color="tab:red", linestyle="--", label="U250 1958 fps")
        ax.set_yticks(list(y), labels)
        ax.invert_yaxis()
        ax.set_xlabel("frames / s")
        ax.set_title(f"throughput, {res.input}")
        ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_latency(results: Results, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.25
    for i, (q, attr) in enumerate((("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"))):
        xs = [k + (i - 1) * width for k in range(len(results.latency))]
        ax.bar(xs, [getattr(r, attr) for r in results.latency], width, label=q)
    ax.axhline(10, color="tab:red", linestyle="--", label="10 ms target (normal load)")
    ax.set_xticks(range(len(results.latency)), [r.name for r in results.latency], fontsize=8)
    return _save_log_bars(fig, ax, "end-to-end latency, ms", path)


def plot_transport(results: Results, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 3.5))
    labels = [f"{t.payload}\n{t.method}" for t in results.transport]
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], [t.latency_us for t in results.transport], 0.4, label="one-way latency")
    ax.bar([x + 0.2 for x in xs], [t.streamed_us for t in results.transport], 0.4, label="streamed, per frame")
    ax.set_xticks(list(xs), labels, fontsize=7)
    return _save_log_bars(fig, ax, "microseconds per frame", path)


def _save_log_bars(fig: Any, ax: Any, ylabel: str, path: Path) -> Path:
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_scaling(results: Results, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, axis in zip(axes, ("workers", "streams"), strict=True):
        runs = [s for s in results.scaling if s.axis == axis]
        ax.plot([s.value for s in runs], [s.run.steady_fps for s in runs], "o-", label="steady state")
        ax.plot([s.value for s in runs], [s.run.total_fps for s in runs], "s--", label="total")
        ax.axhline(CARD_FPS, color="tab:red", linestyle="--", label="U250 1958 fps")
        ax.set_xlabel("preprocess workers" if axis == "workers" else "streams (files)")
        ax.set_xticks([s.value for s in runs])
    axes[0].set_ylim(bottom=0)
    axes[0].set_ylabel("frames / s (all streams)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_files(results: Results, path: Path) -> Path:
    """Each many-files row's wall time against its target (the short clips: against 1.3x the long one)."""
    from bench.many_files import LIBRARY_TARGET_S, LONG_TARGET, RESUME_TARGET_S

    r = results.files
    assert r is not None
    s = r.sizes
    rows = [(f"1 clip x {s.clips * s.clip_frames}", r.long.total_s, None),
            (f"{s.clips} clips x {s.clip_frames}", r.short.total_s, LONG_TARGET * r.long.total_s),
            (f"{s.library} clips x {s.library_frames} (64x64)", r.library.total_s, LIBRARY_TARGET_S),
            (f"--resume, {s.done:,} done", r.resume_s, RESUME_TARGET_S)]
    fig, ax = plt.subplots(figsize=(8, 3))
    y = range(len(rows))
    ax.barh(y, [t for _, t, _ in rows], color="tab:blue", label="wall time (launch -> exit)")
    for i, (_, _, target) in enumerate(rows):
        if target is not None:
            ax.plot([target, target], [i - 0.4, i + 0.4], color="tab:red", linewidth=2,
                    label="target" if i == 1 else None)
    ax.set_yticks(list(y), [name for name, _, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("many short files (sim, JSONL)")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_all(results: Results, folder: Path) -> list[Path]:
    out = []
    if results.throughput:
        out.append(plot_throughput(results, folder / "throughput.png"))
    if results.latency:
        out.append(plot_latency(results, folder / "latency.png"))
    if results.transport:
        out.append(plot_transport(results, folder / "transport.png"))
    if results.scaling:
        out.append(plot_scaling(results, folder / "scaling.png"))
    if results.files is not None:
        out.append(plot_files(results, folder / "files.png"))
    if results.encode is not None:
        from bench.encode_cores import plot as plot_encode

        out.append(plot_encode(results.encode, folder / "encode_cores.png"))
    return out

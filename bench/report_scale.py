"""Tables and target rows of the scaling benchmarks: encoding (speed/size, the naive annotated
loop), the default annotated job and its projection to a bigger host, the cpu backend against its
CPU bound, start-up. Every figure comes from the same run (bench.__main__)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.encoding import EncodeRow, EncodingResult
from bench.projection import Projection, per_group_ms, project
from bench.runner import VidpipeRun
from bench.startup import StartupResult
from bench.throughput import Config, InputResult, sim_max_fps
from vidpipe.pipeline.machine import usable_cores
from vidpipe.stages.config import FILE_BATCH, OutputSettings, default_open_sources

PROJECT_CORES = 16
CARD_MAX_FPS = 1958.0  # the U250's published best (batch 100)
SIZE_SLACK = 1.25  # the preset pick: the least CPU among presets within 25% of the smallest output


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    from bench.report import table

    return table(headers, rows, left)


def pick_preset(rows: list[EncodeRow]) -> EncodeRow:
    """The least CPU per frame (one thread) among the presets whose output is within SIZE_SLACK
    of the smallest."""
    single = [r for r in rows if r.threads == 1]
    smallest = min(r.bytes for r in single)
    return min((r for r in single if r.bytes <= SIZE_SLACK * smallest), key=lambda r: r.cpu_ms)


def encoding_table(enc: EncodingResult) -> str:
    rows = [[r.preset, "1" if r.threads == 1 else "x264 auto", f"{r.fps:,.0f}", f"{r.cpu_ms:.2f}",
             f"{r.bytes / r.frames / 1e3:.2f}"] for r in enc.rows]
    pick = pick_preset(enc.rows)
    text = (f"Encoding {enc.input}, libx264 crf 23 ({enc.rows[0].frames} frames decoded in memory; CPU = every "
            f"thread of the process)\n" + _table(["preset", "threads", "fps", "CPU ms/frame", "KB/frame"], rows))
    n = enc.naive
    text += (f"\npreset pick (least CPU within {SIZE_SLACK:.2f}x of the smallest output, one thread): {pick.preset}"
             f"; configured default: {OutputSettings().video_preset}"
             f"\noverlay (draw_labels) {enc.draw_ms:.3f} ms/frame, BGR->I420 {enc.convert_ms:.3f} ms/frame"
             f"\nnaive annotated loop (decode -> draw -> encode, {n.preset}, x264 default threads, one process): "
             f"{n.fps:,.0f} fps, {1e3 * n.cpu_s / n.frames:.2f} ms CPU/frame = "
             f"{n.cpu_s / n.wall_s:.2f} cores busy")
    return text


def annotated_run(res: InputResult) -> VidpipeRun | None:
    return next((r for c, r in res.runs if c.default and c.sim_batch and c.job["output"]["video"]), None)


def projections(run: VidpipeRun) -> tuple[Projection, Projection]:
    """(this host with this run's structure, PROJECT_CORES cores with the job's defaults)."""
    ms = per_group_ms(run)
    card = sim_max_fps(FILE_BATCH)
    cores = usable_cores()
    here = project(ms, cores, 1, run.plan.get("workers", cores), card)
    return here, project(ms, PROJECT_CORES, default_open_sources(PROJECT_CORES), PROJECT_CORES, card)


def annotated_table(res: InputResult, enc: EncodingResult | None) -> str:
    run = annotated_run(res)
    if run is None:
        return ""
    ms = per_group_ms(run)
    total = sum(ms.values())
    busy = total * run.steady_fps / 1e3
    lines = [f"Annotated job, {res.input} (vidpipe label --backend sim, defaults: batch {FILE_BATCH}, H.264 "
             f"{OutputSettings().video_preset} in an encoder process)",
             f"vidpipe: {run.steady_fps:,.0f} fps steady, CPU ms/frame "
             + ", ".join(f"{k} {v:.3f}" for k, v in ms.items()) + f" = {total:.3f}: {busy:.2f} cores busy"]
    if enc is not None and enc.input == res.input:
        lines.append(f"naive annotated loop: {enc.naive.fps:,.0f} fps: vidpipe / naive = "
                     f"{run.steady_fps / enc.naive.fps:.2f}x")
    here, big = projections(run)
    lines.append(f"model, this host and run: {here.describe()}; measured {run.steady_fps:,.0f}")
    lines.append(f"projection: {big.describe()}")
    return "\n".join(lines)


def cpu_bound(res: InputResult) -> tuple[float, VidpipeRun] | None:
    """(cores / bare decode + preprocess + onnxruntime CPU per frame, the default cpu run)."""
    run = next((r for c, r in res.runs if c.default and c.job["backend"]["name"] == "cpu"), None)
    if run is None or res.onnx_default is None:
        return None
    per_frame = res.ceiling.cpu_ms + res.preprocess_cpu_ms + res.onnx_default.cpu_ms
    return usable_cores() * 1e3 / per_frame, run


def cpu_bound_table(res: InputResult) -> str:
    found = cpu_bound(res)
    if found is None:
        return ""
    bound, run = found
    ms = per_group_ms(run)
    onnx = res.onnx_default.cpu_ms if res.onnx_default else 0.0
    return (f"cpu backend, {res.input}: CPU bound = cores / (bare decode {res.ceiling.cpu_ms:.3f} + resize "
            f"{res.preprocess_cpu_ms:.3f} + onnxruntime at batch {FILE_BATCH} {onnx:.3f} ms CPU/frame) = "
            f"{bound:,.0f} fps; vidpipe cpu default: {run.steady_fps:,.0f} fps = {run.steady_fps / bound:.2f} of it "
            f"(in the pipeline: decode {ms['decode']:.3f}, preprocess {ms['preprocess']:.3f}, infer {ms['infer']:.3f} "
            "ms CPU/frame)")


def startup_table(st: StartupResult) -> str:
    model = "-" if st.model_s is None else f"{st.model_s:.2f} s (+{st.first_batch_s or 0:.2f} s first batch of 8)"
    rows = [["fresh interpreter + imports (each spawned stage)", f"{st.imports_s:.2f} s"],
            ["spawned process importing the file source", f"{st.spawn_s:.2f} s"],
            ["cpu model load (onnxruntime session)", model],
            ["job of 1 file: launch -> first frame written", f"{st.one.startup_s:.2f} s"],
            [f"job of 1 file ({st.frames_per_file} frames): total", f"{st.one.total_s:.2f} s"],
            [f"job of {st.files} files: total", f"{st.many.total_s:.2f} s"],
            ["per added file", f"{st.per_file_s:.2f} s ({st.frames_per_file / st.per_file_s:,.0f} fps)"]]
    return "Start-up (the graph starts once per job; its decode workers take the files)\n" + _table(
        ["what", "time"], rows)


def scale_targets(throughput: list[InputResult], enc: EncodingResult | None,
                  st: StartupResult | None) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for res in throughput:
        out += _default_jsonl_target(res)
        run = annotated_run(res)
        if run is not None and enc is not None and res.input == enc.input:
            ratio = run.steady_fps / enc.naive.fps
            busy = sum(per_group_ms(run).values()) * run.steady_fps / 1e3
            out.append((f"{res.input} annotated default >= 1.6x naive annotated loop, cores busy",
                        f"{run.steady_fps:,.0f} vs {enc.naive.fps:,.0f} fps = {ratio:.2f}x; {busy:.2f} of "
                        f"{usable_cores()} cores (naive: {enc.naive.cpu_s / enc.naive.wall_s:.2f})",
                        "met" if ratio >= 1.6 else "MISSED"))
            big = projections(run)[1]
            out.append((f"projection, {PROJECT_CORES} cores: annotated default >= {CARD_MAX_FPS:.0f} fps",
                        f"{big.fps:,.0f} fps ({big.binding} binds)",
                        "met" if big.fps >= 0.995 * CARD_MAX_FPS else "MISSED"))
        found = cpu_bound(res)
        if found is not None:
            bound, cpu = found
            out.append((f"{res.input} cpu backend >= 0.85 of its CPU bound",
                        f"{cpu.steady_fps:,.0f} of {bound:,.0f} fps = {cpu.steady_fps / bound:.2f}",
                        "met" if cpu.steady_fps >= 0.85 * bound else "MISSED"))
    if st is not None:
        out.append(("many small files: start-up paid once per job",
                    f"job start-up {st.one.startup_s:.2f} s, per added file {st.per_file_s:.2f} s",
                    "met" if st.per_file_s < st.one.startup_s else "MISSED"))
    return out


def _default_jsonl_target(res: InputResult) -> list[tuple[str, str, str]]:
    run = next((r for c, r in res.runs if _is_default_jsonl(c)), None)
    if run is None:
        return []
    goal = min(res.ceiling.fps, CARD_MAX_FPS)
    return [(f"{res.input} default --no-video >= 0.9 x min(ceiling, {CARD_MAX_FPS:.0f})",
             f"{run.steady_fps:,.0f} of {goal:,.0f} fps = {run.steady_fps / goal:.2f}",
             "met" if run.steady_fps >= 0.9 * goal else "MISSED")]


def _is_default_jsonl(c: Config) -> bool:
    return c.default and bool(c.sim_batch) and not c.job["output"]["video"]

"""Every core on one file's decode (#20): one 1080p file decoded on one core and on all of them,
side by side in one run (the process's CPU affinity, inherited by every process it starts, as
`taskset -c 0` would set it).

* raw decode rates, frames to BGR arrays: OpenCV with one FFmpeg thread and with its default (a
  thread per core, CAP_PROP_N_THREADS), PyAV with FFmpeg's frame threads, and a process per core
  at once, each on its own run of the file as vidpipe cuts it (stages.sources.runs: from a
  keyframe, the frames before the run's start decoded and dropped; OpenCV, one thread each);
* `vidpipe label --no-video` (sim, the job's defaults) on the same file: on all cores its decode
  workers share the file's runs (runtime.split_min_frames, 300: two runs of the 600 frames; on one
  core it is not cut). Its rate is frames over the first to the last write (VidpipeRun.span_fps:
  later runs are written in bursts), on one core and on all (target: at least 1.6x), and the CPU
  each process spent per frame.

    python -m bench.decode_cores [CLIP]      # this bench alone (default: the 600-frame 1080p clip)
    python -m bench --only decode            # the same, as a part of `make bench`
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
import av
import cv2

from bench.runner import VidpipeRun, run_vidpipe
from vidpipe.stages.sources.runs import cuts, read_index

TARGET = 1.6  # all cores / one core, vidpipe --no-video on one long file
JOB = {"backend": {"max_batch": "auto"}}


@dataclass(frozen=True)
class DecodeRow:
    method: str
    one_core_fps: float
    all_cores_fps: float

    @property
    def ratio(self) -> float:
        return self.all_cores_fps / self.one_core_fps


@dataclass(frozen=True)
class DecodeCoresResult:
    input: str
    cores: int
    rows: list[DecodeRow]
    one: VidpipeRun
    every: VidpipeRun

    @property
    def ratio(self) -> float:
        return self.every.span_fps / self.one.span_fps

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "cores": self.cores, "rows": [{**asdict(r), "ratio": r.ratio} for r in self.rows],
                "one": self.one.to_json(), "every": self.every.to_json(), "ratio": self.ratio}


def _cv(path: str, threads: int, start: int = 0, end: int = 1 << 30) -> int:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads] if threads else [])
    if start:
        cap.set(cv2.CAP_PROP_POS_FRAMES, start)  # from the keyframe before, the frames up to it dropped
    n = start
    while n < end and cap.grab():
        cap.retrieve()
        n += 1
    cap.release()
    return n - start


def _pyav(path: str) -> int:
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="bgr24") is not None)


def _runs(path: str, parts: int) -> list[tuple[int, int]]:
    """[start, end) frame runs as vidpipe cuts the file (stages.sources.runs)."""
    index = read_index(path)
    return cuts(index, parts) if index is not None else [(0, _count(path))]


def _processes(path: str, runs: list[tuple[int, int]]) -> int:
    """A process per run of GOPs, all at once (forked: no interpreter start-up in the figure)."""
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(len(runs)) as pool:
        return sum(pool.starmap(_cv, [(path, 1, a, b) for a, b in runs]))


def _count(path: str) -> int:
    cap = cv2.VideoCapture(path)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return n


def _rate(fn: Any, *args: Any) -> float:
    """Frames per second of `fn(*args)` in a fresh process: OpenCV counts the cores it may use once
    per process, so each affinity needs its own."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_measure, args=(send, fn, args))
    proc.start()
    rate = float(receive.recv())
    proc.join()
    return rate


def _measure(send: Any, fn: Any, args: tuple[Any, ...]) -> None:
    t0 = time.perf_counter()
    frames = fn(*args)
    send.send(frames / (time.perf_counter() - t0))


def _on(cores: set[int], fn: Any, *args: Any) -> Any:
    every = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        return fn(*args)
    finally:
        os.sched_setaffinity(0, every)


def run(clip: Path, workdir: Path) -> DecodeCoresResult:
    print(f"decode cores: {clip.name} on one core and on all ...", flush=True)
    path, every = str(clip), os.sched_getaffinity(0)
    one = {min(every)}
    methods = [("OpenCV, 1 FFmpeg thread", _cv, (path, 1)), ("OpenCV, default threads", _cv, (path, 0)),
               ("PyAV, frame threads (AUTO)", _pyav, (path,)),
               (f"{len(every)} processes x OpenCV 1 thread (vidpipe's runs)", _processes,
                (path, _runs(path, len(every))))]
    rows = [DecodeRow(name, _on(one, _rate, fn, *args), _on(every, _rate, fn, *args)) for name, fn, args in methods]
    runs = [_on(cores, run_vidpipe, f"--no-video, {len(cores)} core(s)", [clip], JOB, workdir)
            for cores in (one, every)]
    return DecodeCoresResult(clip.name, len(every), rows, runs[0], runs[1])


def table(r: DecodeCoresResult) -> str:
    from bench.report import table as text_table

    rows = [[row.method, f"{row.one_core_fps:,.0f}", f"{row.all_cores_fps:,.0f}", f"{row.ratio:.2f}x"]
            for row in r.rows]
    rows.append(["vidpipe label --no-video (sim, first to last write)", f"{r.one.span_fps:,.0f}",
                 f"{r.every.span_fps:,.0f}", f"{r.ratio:.2f}x"])
    cpu = ", ".join(f"{k.removeprefix('vp:')} {v:.2f}"
                    for k, v in sorted(r.every.cpu_ms_per_frame.items()) if v >= 0.01)
    return (f"Decode of one file on 1 and {r.cores} cores, {r.input} (fps)\n"
            + text_table(["method", "1 core", f"{r.cores} cores", "ratio"], rows)
            + f"\nvidpipe on {r.cores} cores, CPU ms per frame: {cpu}")


def targets(r: DecodeCoresResult) -> list[tuple[str, str, str]]:
    return [(f"--no-video on one {r.input}: >= {TARGET}x its one-core rate on {r.cores} cores",
             f"{r.every.span_fps:,.0f} vs {r.one.span_fps:,.0f} fps = {r.ratio:.2f}x",
             "met" if r.ratio >= TARGET else "MISSED")]


def main(argv: list[str] | None = None) -> int:
    """This bench alone: its table and target line (no files written)."""
    import sys
    import tempfile

    from bench.inputs import FULL, ensure_clip

    args = sys.argv[1:] if argv is None else argv
    clip = Path(args[0]) if args else ensure_clip(FULL[1])
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-") as tmp:
        result = run(clip, Path(tmp))
    print(table(result))
    for target, measured, verdict in targets(result):
        print(f"{target}: {measured} ({verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

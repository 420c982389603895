"""`python -m bench` (`make bench`): every benchmark, side by side, in one run on this machine.

    python -m bench                 # full run (about 10 minutes on 2 cores)
    python -m bench --quick         # tiny inputs, one repetition: a smoke run (< 1 minute)
    python -m bench --only latency transport --repeat 3 --out /tmp/b

Inputs are generated once into the vidpipe cache; run outputs go to a temporary folder; the
results (results.json, tables.txt, PNG plots) to bench/results/ unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench import decode_cores, encode_cores, encoding, latency, many_files, scaling, startup, throughput, transport
from bench.inputs import LIVE, LIVE_QUICK, QUICK, ensure_clip, make_inputs
from bench.report import Results, write
from vidpipe.pipeline.machine import usable_cores
from vidpipe.stages.config import OutputSettings

MODULES = ("throughput", "encoding", "latency", "transport", "scaling", "startup", "files", "decode", "encode")
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny inputs, one repetition (smoke run)")
    p.add_argument("--repeat", type=int, default=0, help="runs per measurement, best kept (default 2; quick 1)")
    p.add_argument("--only", nargs="+", choices=MODULES, default=list(MODULES))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    p.add_argument("--keep", action="store_true", help="keep the run outputs (printed folder)")
    p.add_argument("--inputs", type=Path, default=None, help="where generated clips go (default: the vidpipe cache)")
    return p.parse_args(argv)


def meta(args: argparse.Namespace, repeat: int) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cores": usable_cores(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "quick": args.quick,
        "repeat (best of)": repeat,
        "loadavg before": round(os.getloadavg()[0], 2),
    }


def run_all(args: argparse.Namespace, workdir: Path) -> Results:
    repeat = args.repeat or (1 if args.quick else 2)
    results = Results(meta(args, repeat), [], [], [], [])
    clips = make_inputs(args.quick, args.inputs) if {"throughput", "scaling", "encoding", "decode"} & set(args.only) \
        else {}
    if "transport" in args.only:  # first: the others leave page cache and processes behind
        results.transport = transport.run(args.quick)
    if "throughput" in args.only:
        results.throughput = throughput.run(clips, workdir, args.quick, repeat)
    if "encoding" in args.only:
        name, clip = next(iter(clips.items()))
        results.encoding = encoding.run(name, clip, OutputSettings().video_preset, args.quick)
    if "latency" in args.only:
        spec = LIVE_QUICK if args.quick else LIVE
        results.latency = latency.run(ensure_clip(spec, args.inputs), spec.frames, float(spec.fps), workdir)
    if "scaling" in args.only:
        name, clip = next(iter(clips.items())) if args.quick else ("640x360", clips["640x360"])
        results.meta["scaling clip"] = name
        results.scaling = scaling.run(clip, workdir, args.quick, repeat)
    if "startup" in args.only:
        small = QUICK[0]
        results.startup = startup.run(ensure_clip(small, args.inputs), small.frames, workdir, args.quick)
    if "files" in args.only:
        results.files = many_files.run(workdir, args.quick, args.inputs)
    if "decode" in args.only:  # one long file on one core and on all
        results.decode = decode_cores.run(next(iter(clips.values())) if args.quick else clips["1920x1080"], workdir)
    if "encode" in args.only:  # one long file's annotated video on one core and on all
        results.encode = encode_cores.run(workdir, args.quick, args.inputs, repeat)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-") as tmp:
        workdir = Path(tempfile.mkdtemp(prefix="vidpipe-bench-keep-")) if args.keep else Path(tmp)
        results = run_all(args, workdir)
        results.meta["seconds"] = round(time.monotonic() - t0, 1)
        written = write(results, args.out)
    print("\nwritten: " + ", ".join(str(p) for p in written))
    if args.keep:
        print(f"run outputs kept in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

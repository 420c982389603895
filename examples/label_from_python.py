"""Label videos from Python, then use the results: the job API in twenty lines.

    python examples/label_from_python.py VIDEO_OR_FOLDER... --out OUT [--backend cpu|sim|alveo]

Runs the same job as `vidpipe label` (the same graph, manifest, outputs and report), then reads
OUT/summary.json and each video's segments to print what happens in each video and when.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from vidpipe.pipeline.config import replace_path
from vidpipe.pipeline.logs import setup_main_logging, shutdown_main_logging
from vidpipe.stages.config import JobConfig, validate
from vidpipe.stages.jobs.graph import run_job
from vidpipe.stages.jobs.label import LabelJob


def label(inputs: list[str], out: str, backend: str) -> int:
    config = JobConfig(job="label", inputs=tuple(inputs))
    config = replace_path(config, "output.dir", out)
    config = replace_path(config, "output.progress", False)
    config = replace_path(config, "backend.name", backend)
    validate(config, "label_from_python.py")  # one line naming the key, as the CLI does
    log_queue = setup_main_logging(logging.WARNING)
    try:
        return run_job(LabelJob(config), log_queue, logging.WARNING)  # 0 ok, 1 some video failed
    finally:
        shutdown_main_logging()


def print_results(out: Path) -> None:
    for row in json.loads((out / "summary.json").read_text())["videos"]:
        top = ", ".join(f"{t['name']} {t['share']:.0%}" for t in row["top_labels"]) or "-"
        status = f"{row['status']}: {row['error']}" if row["error"] else row["status"]
        print(f"{row['video']}: {status}, {row['frames']} frames, {top}")
        segments = out / f"{row['video']}.segments.json"
        if segments.is_file():
            for seg in json.loads(segments.read_text())["segments"]:
                print(f"  {seg['start_s']:6.2f} - {seg['end_s']:6.2f} s  {seg['name']} ({seg['mean_score']:.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--out", required=True)
    parser.add_argument("--backend", default="cpu")
    args = parser.parse_args()
    code = label(args.inputs, args.out, args.backend)
    print_results(Path(args.out))
    return code


if __name__ == "__main__":
    sys.exit(main())

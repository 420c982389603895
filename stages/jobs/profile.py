"""`vidpipe label ... --profile`: the reference host script's --profile breakdown, per image.

ResNet50-PYNQ's `infer_pynq_threaded.py --profile` reports upload (host -> card), accelerator and
download (card -> host) time; the `alveo` backend measures the same three around
`sync_to_device`, `start`..`wait` and `sync_from_device`, and every JSONL line carries them
(`timings_ms`: per image, the batch's time divided by its images). This table adds the host
stages (preprocess, queue, sink) and the published figures to compare against.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from vidpipe.pipeline.meters import nearest_rank
from vidpipe.stages.jobs.progress import print_table

COLUMNS = ("upload", "compute", "download", "preprocess", "queue", "infer", "sink")
TITLES = {"compute": "accelerator"}
# The release's numbers (U250): batch 1 -> 2.02 ms per image, batch 100 -> 51.06 ms per batch,
# batch 1000 -> 496.14 ms per batch (hw.sim.PUBLISHED_MS).
PUBLISHED = ("published (U250, ResNet50-PYNQ): batch 1: 2.02 ms per image (495 FPS); "
             "batch 100: 51.06 ms per batch (0.51 ms per image, 1958 FPS); "
             "batch 1000: 496.14 ms per batch (0.50 ms per image, 2015 FPS)")


def collect(jsonl_files: Iterable[Path]) -> dict[str, list[float]]:
    """Every frame's timings_ms, by stage."""
    samples: dict[str, list[float]] = {c: [] for c in COLUMNS}
    for path in jsonl_files:
        with path.open(encoding="utf-8") as f:
            for line in f:
                timings = json.loads(line).get("timings_ms") or {}
                for name in COLUMNS:
                    if name in timings:
                        samples[name].append(float(timings[name]))
    return samples


def rows(samples: dict[str, list[float]]) -> list[list[str]]:
    table = []
    for name in COLUMNS:
        values = sorted(samples[name])
        if not values:
            continue
        mean = sum(values) / len(values)
        p50, p99 = nearest_rank(values, (50, 99))
        table.append([TITLES.get(name, name), str(len(values)), f"{mean:.3f}", f"{p50:.3f}", f"{p99:.3f}"])
    return table


def print_profile(jsonl_files: Iterable[Path], batch: int) -> None:
    table = rows(collect(jsonl_files))
    if not table:
        print("profile: no timings in the JSONL files (was jsonl output off?)")
        return
    print(f"\nprofile, ms per image (max batch {batch}; upload/accelerator/download: the batch's time / its images)")
    print_table(["stage", "frames", "mean", "p50", "p99"], table)
    print(PUBLISHED)

"""Smoke test of the benchmarks: `python -m bench --quick` runs every benchmark on tiny generated
inputs and writes its results. Nothing here asserts a timing: only that each benchmark ran and
reported what it measures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import leaked_segments, vidpipe_segments

REPO = Path(__file__).resolve().parents[2]


def quick_bench(tmp_path: Path, *only: str) -> tuple[dict[str, Any], Path, str]:
    """(results.json, the results folder, stdout) of `python -m bench --quick --only ONLY...`."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", *only, "--out", str(out), "--inputs",
         str(tmp_path / "inputs")], cwd=REPO, capture_output=True, text=True, timeout=230,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), out, proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_bench_runs_every_benchmark(tmp_path: Path) -> None:
    """Every benchmark but the many-files and decode ones (the `extended` test below runs those)."""
    before = vidpipe_segments()
    data, out, stdout = quick_bench(tmp_path, "throughput", "encoding", "latency", "transport", "scaling", "startup")

    (tp,) = data["throughput"]
    assert tp["ceiling"]["frames"] == tp["naive"]["frames"] > 0
    labels = [run["label"] for run in tp["runs"]]
    assert any(label.startswith("vidpipe sim") for label in labels)
    for run in tp["runs"]:
        assert run["frames"] == tp["ceiling"]["frames"], run["label"]  # lossless: every frame labeled
        assert run["rss_mb"] > 0 and run["total_fps"] > 0

    assert data["latency"][0]["name"].startswith("live 30 fps")
    for r in data["latency"]:
        assert 0 < r["labeled"] <= r["frames_in"] and r["labeled"] + r["dropped"] == r["frames_in"]
        assert 0 < r["p50_ms"] <= r["p99_ms"]

    methods = {(t["payload"], t["method"]) for t in data["transport"]}
    assert ("1080p BGR frame", "slot hand-off") in methods and ("1080p BGR frame", "multiprocessing.Queue") in methods
    assert all(t["latency_us"] > 0 and t["streamed_us"] > 0 for t in data["transport"])

    assert {(s["axis"], s["value"]) for s in data["scaling"]} >= {("workers", 1), ("streams", 2)}
    assert data["targets"]  # every target is reported, met or not
    for name in ("tables.txt", "throughput.png", "latency.png", "transport.png", "scaling.png"):
        assert (out / name).stat().st_size > 0, name
    assert "Throughput" in stdout and "Targets" in stdout
    assert leaked_segments(before) == set()  # no shared memory left behind


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.timeout(240)
def test_quick_bench_many_files_decode_and_encode(tmp_path: Path) -> None:
    before = vidpipe_segments()
    data, out, _ = quick_bench(tmp_path, "files", "decode", "encode")
    files = data["files"]
    assert files["short"]["frames"] == files["long"]["frames"] > 0 and files["library"]["frames"] > 0
    assert files["resume_s"] > 0
    decode = data["decode"]
    assert decode["one"]["frames"] == decode["every"]["frames"] > 0 and len(decode["rows"]) == 4
    assert all(row["one_core_fps"] > 0 and row["all_cores_fps"] > 0 for row in decode["rows"])
    encode = data["encode"]
    assert encode["one"]["frames"] == encode["every"]["frames"] == encode["unsplit"]["frames"] > 0
    assert encode["every"]["plan"]["encoders"] >= 1 and encode["ratio"] > 0
    assert (out / "files.png").stat().st_size > 0 and (out / "encode_cores.png").stat().st_size > 0
    assert leaked_segments(before) == set()

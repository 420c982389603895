"""Soak: a live source looping for minutes; memory and shared memory stay flat, latency bounded.

`pytest -m soak` runs it for VIDPIPE_SOAK_S seconds (default 600); the short version (20 s)
runs with the slow tests in CI. Both print the growth per 100k frames and write it to
`soak.json` in the test's folder.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

from tests.media import write_video
from tests.processes import descendants
from tests.stages.jobs.test_live_job import Live


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and all its descendants (the whole graph), in MiB."""
    total = 0
    for p in [pid, *descendants(pid)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        except (OSError, StopIteration):
            continue  # it ended meanwhile
    return total / 1024


def shm_mb(pid: int) -> float:
    return sum(f.stat().st_size for f in Path("/dev/shm").glob(f"vidpipe_{pid}_*")) / 2**20


def soak(tmp_path: Path, seconds: float) -> dict[str, float]:
    video = write_video(tmp_path / "loop.mp4", frames=50, width=320, height=240, fps=25)
    config = tmp_path / "soak.yaml"  # as fast as it decodes (not real time): many frames per minute
    config.write_text(f"live:\n  http: true\n  jsonl: false\n  sources:\n    - uri: {video}\n      realtime: false\n"
                      "      loop: true\n      name: loop\n")
    live = Live(["--config", str(config), "--backend", "sim"], tmp_path / "out")
    samples: list[tuple[float, float, float, int, float | None]] = []
    try:
        url = live.url()
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            time.sleep(min(2.0, seconds / 10))  # a sample every few seconds: the measurement's own pace
            with urllib.request.urlopen(f"{url}status.json", timeout=10) as r:
                stream = json.loads(r.read())["streams"]["loop"]
            samples.append((time.monotonic(), rss_mb(live.proc.pid), shm_mb(live.proc.pid), stream["frames"],
                            stream.get("latency_p99_ms")))
    finally:
        assert live.stop() == 0
    half = samples[len(samples) // 2]
    last = samples[-1]
    frames = max(1, last[3] - half[3])
    result = {
        "seconds": seconds,
        "frames": last[3],
        "rss_mb_start_of_second_half": half[1],
        "rss_mb_end": last[1],
        "rss_growth_mb_per_100k_frames": (last[1] - half[1]) * 100_000 / frames,
        "shm_mb": last[2],
        "shm_changed": any(s[2] != samples[0][2] for s in samples),
        "latency_p99_ms_max": max(s[4] or 0.0 for s in samples),
    }
    (tmp_path / "soak.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return result


def check(result: dict[str, float]) -> None:
    assert result["frames"] > 1000
    assert not result["shm_changed"]  # the rings are sized once
    assert result["rss_growth_mb_per_100k_frames"] < 50, result  # flat: no per-frame leak
    assert result["latency_p99_ms_max"] < 1000, result  # bounded (the file is read faster than real time)


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.timeout(120)
def test_a_short_soak_keeps_memory_flat(tmp_path: Path) -> None:
    check(soak(tmp_path, 20.0))


@pytest.mark.soak
@pytest.mark.timeout(7200)
def test_soak(tmp_path: Path) -> None:
    check(soak(tmp_path, float(os.environ.get("VIDPIPE_SOAK_S", "600"))))

"""What a live run leaves and serves, end to end: a 15 fps camera recorded plays at real speed,
JSONL lines carry the run id and wall clock (two runs: a JSONL segment each, one table), and
/metrics has every series from the start (parsed with prometheus_client's parser)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import av
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.mjpeg_server import MjpegServer
from tests.stages.jobs.test_live_job import Live, lines, wait_until
from vidpipe.stages.live_files import segments

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

FPS = 15
SECONDS = 4.0


def _config(tmp_path: Path, cam: MjpegServer) -> Path:
    cfg = tmp_path / "live.yaml"
    cfg.write_text("job: live\nbackend:\n  name: sim\n  max_batch: 4\n"
                   "live:\n  record: true\n  status_interval_s: 1\n"
                   f"  sources:\n    - uri: {cam.url()}\n      name: cam\n")
    return cfg


def _recording(path: Path) -> tuple[np.ndarray, float]:
    """Presentation times of every frame, and the container's duration, in seconds."""
    with av.open(str(path)) as c:
        return np.array([float(f.time) for f in c.decode(video=0)]), (c.duration or 0) / 1e6


def _metrics(url: str) -> dict[str, list]:
    text = urllib.request.urlopen(url + "metrics", timeout=5).read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _values(samples: list, name: str, label: str) -> dict[str, float]:
    return {s.labels[label]: s.value for s in samples if s.name == name}


def test_recording_keeps_real_time_and_lines_name_their_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with MjpegServer(fps=FPS, width=320, height=240) as cam:
        cfg = _config(tmp_path, cam)
        live = Live(["--config", str(cfg)], out)
        try:
            url = live.url()
            at_start = _metrics(url)  # the stream may not even have started: series of the run are there
            wait_until("the first label", lambda: len(lines(out, "cam")) > 0)
            time.sleep(SECONDS)
            status = json.loads(urllib.request.urlopen(url + "status.json", timeout=5).read())
            metrics = _metrics(url)
        finally:
            assert live.stop() == 0
        run1 = status["run"]
        assert f"run {run1}" in live.log.read_text()
        first_run = sorted(out.glob("cam.*.mp4"))
        assert len(first_run) == 1 and re.fullmatch(r"cam\.\d{8}T\d{6}Z\.mp4", first_run[0].name)
        recorded = _recording(first_run[0])
        size = first_run[0].stat().st_size

        # a second run starts its own JSONL segment
        live = Live(["--config", str(cfg)], out)
        try:
            wait_until("labels of the second run", lambda: sum(r["run"] != run1 for r in lines(out, "cam")) > 3)
        finally:
            assert live.stop() == 0

    # -- recordings: the second run has its own file, the first is untouched ---------------------
    recordings = sorted(out.glob("cam.*.mp4"))
    assert len(recordings) == 2 and recordings[0] == first_run[0] and first_run[0].stat().st_size == size

    # -- JSONL: a segment per run, one table, two runs one after the other, each line complete ----
    assert [p.name for p in segments(out, "cam")] == [f"{p.stem}.jsonl" for p in recordings]  # named alike
    rows = [json.loads(x) for p in segments(out, "cam") for x in p.read_text().splitlines()]
    runs = [r["run"] for r in rows]
    assert runs[0] == run1 and len(set(runs)) == 2 and runs == sorted(runs, key=lambda r: r != run1)
    first = [r for r in rows if r["run"] == run1]
    numbers = [r["frame"] for r in first]  # in order; a frame may be dropped as stale on a loaded machine
    assert numbers == sorted(set(numbers)) and numbers[0] <= 5
    for r in rows:
        assert r["stream"] == "cam" and set(r) >= {"time", "time_iso", "t", "top5", "latency_ms", "timings_ms"}
        assert datetime.fromisoformat(r["time_iso"]).timestamp() == pytest.approx(r["time"], abs=1e-3)
    assert abs(first[0]["time"] - time.time()) < 120  # wall clock, not the stream's clock

    # -- recording: the camera's pace, not a fixed 30 fps ------------------------------------------
    pts, duration = recorded
    wall = first[-1]["time"] - first[0]["time"]  # capture times of the first and last frame recorded
    assert wall > SECONDS * 0.9 and len(pts) == len(first) >= FPS * SECONDS * 0.8
    assert pts[-1] == pytest.approx(wall, abs=0.1)  # each frame where its capture time puts it
    assert duration == pytest.approx(wall + 1 / 30, abs=0.1)  # plays as long as it took (+ the last frame)
    spacing = np.diff(pts)
    assert np.median(spacing) == pytest.approx(1 / FPS, rel=0.15)
    print(f"recording: {len(pts)} frames, {duration:.2f} s in the container, {wall:.2f} s of wall clock between "
          f"the first and last capture, frame spacing median {np.median(spacing) * 1000:.1f} ms "
          f"(p5 {np.percentile(spacing, 5) * 1000:.1f}, p95 {np.percentile(spacing, 95) * 1000:.1f})")

    # -- metrics --------------------------------------------------------------------------------
    info = metrics["vidpipe_build_info"][0].labels
    assert info["backend"] == "sim" and info["version"] and info["python"] and info["pynq"]
    assert _values(at_start["vidpipe_restarts"], "vidpipe_restarts_total", "stage").keys() >= {"infer-0"}
    assert set(_values(at_start["vidpipe_stage_latency_seconds"], "vidpipe_stage_latency_seconds_count", "stage")) \
        == {"preprocess", "queue", "infer", "sink"}
    stages = _values(metrics["vidpipe_stage_latency_seconds"], "vidpipe_stage_latency_seconds_count", "stage")
    assert all(count >= len(first) * 0.9 for count in stages.values()), stages
    assert _values(metrics["vidpipe_batch_size"], "vidpipe_batch_size_count", "infer")["infer-0"] > 0
    busy = _values(metrics["vidpipe_accelerator_busy_ratio"], "vidpipe_accelerator_busy_ratio", "infer")["infer-0"]
    assert 0 < busy < 1  # a 15 fps camera keeps the simulated card busy a few % of the time
    drops = {(s.labels["reason"]) for s in metrics["vidpipe_drops"] if s.name == "vidpipe_drops_total"}
    assert drops == {"capture", "stale", "lost", "late", "superseded"}
    assert "source:cam" in _values(metrics["vidpipe_restarts"], "vidpipe_restarts_total", "stage")
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", run1)

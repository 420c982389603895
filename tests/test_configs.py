"""Every shipped config loads and validates (a typo there would be a user's first error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidpipe.stages.config import load_job

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads(path: Path) -> None:
    job = load_job(path)
    assert job.job in ("label", "live")
    if job.job == "live":
        assert job.live.sources and job.live.http_host == "127.0.0.1"


def test_there_are_configs_for_each_job() -> None:
    assert {p.name for p in CONFIGS} >= {"label-videos.yaml", "live-camera.yaml", "multi-camera.yaml", "benchmark.yaml"}

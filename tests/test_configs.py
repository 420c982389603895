"""Every shipped config loads and validates (a typo there would be a user's first error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidpipe.pipeline.schema import describe
from vidpipe.stages.config import JobConfig, load_job
from vidpipe.stages.config_docs import EXAMPLES, INTERNAL, JOB_SECTIONS, example_yaml, reference_markdown

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads(path: Path) -> None:
    job = load_job(path)
    assert job.job in ("label", "live", "watch")
    if job.job == "live":
        assert job.live.sources and job.live.http_host == "127.0.0.1"


def test_there_are_configs_for_each_job() -> None:
    assert {p.name for p in CONFIGS} >= {"label-videos.yaml", "live-camera.yaml", "multi-camera.yaml", "benchmark.yaml",
                                         "watch-folder.yaml"}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_commented_configs_are_made_from_the_field_docs(name: str) -> None:
    """Each key is documented once (its field's docstring): these files are generated from it
    (`python -m vidpipe.stages.config_docs configs/`), and say every key of their job."""
    job, values = EXAMPLES[name]
    text = (CONFIGS[0].parent / name).read_text()
    assert text == example_yaml(job, values), f"configs/{name} is stale: python -m vidpipe.stages.config_docs configs/"
    documented = [k for k in describe(JobConfig) if not k.section and k.path.split(".")[0] in JOB_SECTIONS[job]
                  and k.path not in INTERNAL and "[]" not in k.path]
    for key in documented:
        leaf = key.path.rsplit(".", 1)[-1]
        assert f"{leaf}:" in text and key.doc, key.path


def test_every_key_has_a_doc_and_the_reference_lists_it() -> None:
    reference = reference_markdown()
    for key in describe(JobConfig):
        assert key.doc, f"{key.path}: no docstring after its field"
        if not key.section and key.path not in INTERNAL:
            assert f"| `{key.path.rsplit('.', 1)[-1]}` |" in reference

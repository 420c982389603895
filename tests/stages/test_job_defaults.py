"""Settings that depend on the job or the machine: the batch (large for files, small for live,
explicit values win), files open at once, encoder processes and their x264 threads."""

from __future__ import annotations

import pytest

from vidpipe.pipeline.config import replace_path
from vidpipe.stages.config import FILE_BATCH, LIVE_BATCH, JobConfig, OutputSettings, SourceSettings, with_job_defaults
from vidpipe.stages.jobs.label import LabelJob, label_encoders
from vidpipe.stages.jobs.live import LiveJob
from vidpipe.stages.outputs.label import encoder_threads


def machine_with(monkeypatch: pytest.MonkeyPatch, cores: int) -> None:
    """Every module that sizes something by the usable cores sees `cores`."""
    for module in ("vidpipe.stages.config", "vidpipe.stages.jobs.label", "vidpipe.stages.outputs.label"):
        monkeypatch.setattr(f"{module}.usable_cores", lambda: cores)


def test_the_batch_is_large_for_files_and_small_for_live_unless_set() -> None:
    assert JobConfig().backend.max_batch == 0  # chosen by the job
    assert with_job_defaults(JobConfig()).backend.max_batch == FILE_BATCH
    assert with_job_defaults(JobConfig(job="watch")).backend.max_batch == FILE_BATCH
    assert with_job_defaults(JobConfig(job="live")).backend.max_batch == LIVE_BATCH
    explicit = replace_path(JobConfig(job="live"), "backend.max_batch", 8)
    assert with_job_defaults(explicit).backend.max_batch == 8
    assert with_job_defaults(replace_path(JobConfig(), "backend.max_batch", 8)).backend.max_batch == 8


def test_jobs_apply_their_defaults() -> None:
    assert LabelJob(JobConfig()).config.backend.max_batch == FILE_BATCH
    live = JobConfig(job="live", live=replace_path(JobConfig().live, "sources", (SourceSettings("0"),)))
    assert LiveJob(live).config.backend.max_batch == LIVE_BATCH


def test_files_open_at_once_follow_the_cores_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for cores, files in ((1, 2), (2, 2), (16, 8)):
        machine_with(monkeypatch, cores)
        assert with_job_defaults(JobConfig()).runtime.max_open_sources == files
    explicit = replace_path(JobConfig(), "runtime.max_open_sources", 3)
    assert with_job_defaults(explicit).runtime.max_open_sources == 3


def test_encoders_one_per_open_file_and_x264_threads_fill_what_they_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    machine_with(monkeypatch, 16)
    config = with_job_defaults(JobConfig())
    assert label_encoders(config, 1) == 1 and label_encoders(config, 100) == 8
    assert label_encoders(replace_path(config, "output.video", False), 5) == 0
    assert label_encoders(replace_path(config, "output.encoders", 3), 100) == 3
    assert encoder_threads(OutputSettings(), 8) == 1  # encoders take half the cores: one thread each
    assert encoder_threads(OutputSettings(), 1) == 8  # one file on a big host: frame threads
    assert encoder_threads(OutputSettings(video_threads=2), 1) == 2
    machine_with(monkeypatch, 2)
    assert encoder_threads(OutputSettings(), 1) == 1

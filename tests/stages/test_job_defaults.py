"""Settings that depend on the job or the machine: the batch (large for files, small for live,
explicit values win), files open at once, encoder processes and their x264 threads."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidpipe.pipeline.config import replace_path
from vidpipe.pipeline.errors import ConfigError
from vidpipe.stages.config import (
    FILE_BATCH,
    LIVE_BATCH,
    JobConfig,
    OutputSettings,
    SourceSettings,
    load_job,
    with_job_defaults,
)
from vidpipe.stages.jobs.api import settle_config
from vidpipe.stages.jobs.label import LabelJob
from vidpipe.stages.jobs.label_graph import label_encoders, splittable
from vidpipe.stages.jobs.live import LiveJob
from vidpipe.stages.outputs.chunks import chunk_keyint, chunk_length
from vidpipe.stages.outputs.label import encoder_threads
from vidpipe.stages.outputs.split import splits
from vidpipe.stages.sink import Lane


def machine_with(monkeypatch: pytest.MonkeyPatch, cores: int) -> None:
    """Every module that sizes something by the usable cores sees `cores`."""
    for module in ("vidpipe.stages.config", "vidpipe.stages.jobs.label_graph", "vidpipe.stages.outputs.label"):
        monkeypatch.setattr(f"{module}.usable_cores", lambda: cores)


def test_the_batch_is_large_for_files_and_small_for_live_unless_set() -> None:
    assert JobConfig().backend.max_batch is None  # auto: chosen by the job
    assert with_job_defaults(JobConfig()).backend.max_batch == FILE_BATCH
    assert with_job_defaults(JobConfig(job="watch")).backend.max_batch == FILE_BATCH
    assert with_job_defaults(JobConfig(job="live")).backend.max_batch == LIVE_BATCH
    explicit = replace_path(JobConfig(job="live"), "backend.max_batch", 8)
    assert with_job_defaults(explicit).backend.max_batch == 8
    assert with_job_defaults(replace_path(JobConfig(), "backend.max_batch", 8)).backend.max_batch == 8


def test_the_config_is_settled_once_with_the_jobs_defaults() -> None:
    """settle_config (the CLI's and the API's one step) chooses what is left at auto; jobs take the
    config as it is."""
    assert settle_config(JobConfig(), "test").backend.max_batch == FILE_BATCH
    live = JobConfig(job="live", live=replace_path(JobConfig().live, "sources", (SourceSettings("0"),)))
    assert settle_config(live, "test").backend.max_batch == LIVE_BATCH
    assert LiveJob(live).config is live and LabelJob(live).config is live


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


def test_a_long_video_gets_an_encoder_per_core_and_is_split_only_over_several(monkeypatch: pytest.MonkeyPatch) -> None:
    machine_with(monkeypatch, 16)
    config = with_job_defaults(JobConfig())
    assert splittable(config, 500) and not splittable(config, 499)  # two chunks of 250
    assert not splittable(replace_path(config, "output.video_chunk_frames", 0), 10**6)
    assert label_encoders(config, 1, split=True) == 16 and label_encoders(config, 1) == 1
    lanes = [Lane(None) for _ in range(2)]  # type: ignore[arg-type]  # no channel is used here
    for lane in lanes:
        lane.peers = lanes
    assert splits(lanes[0], 1000, 500, 7) and not splits(lanes[0], 999, 500, 7)
    assert not splits(Lane(None), 10**6, 500, 7)  # type: ignore[arg-type]  # one lane: nothing to spread over
    assert not splits(lanes[0], 10**6, 7, 7) and splits(lanes[0], 10**6, 8, 7)  # a chunk outlasts the lag
    assert chunk_length(300) == 500 and chunk_keyint(300) == 250 and chunk_length(24) == chunk_keyint(24) == 24


def test_auto_is_written_auto_and_zero_still_means_it_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("backend:\n  max_batch: auto\npreprocess:\n  workers: 0\nruntime:\n  frame_slots: null\n")
    job = load_job(path)
    assert job.backend.max_batch is None and job.preprocess.workers is None and job.runtime.frame_slots is None
    warned = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert warned == [f"{path}: preprocess.workers: 0 means auto; write `auto` (0 for auto is deprecated)"]
    path.write_text("backend:\n  max_batch: lots\n")
    with pytest.raises(ConfigError, match=r"backend\.max_batch: expected an integer or auto, got 'lots'"):
        load_job(path)


def test_every_mistake_of_a_config_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("backend:\n  nmae: cpu\n  max_batch: 9999\noutput:\n  video_crf: 99\n  vidoe: false\n"
                    "postprocess:\n  overlay_top: many\n")
    with pytest.raises(ConfigError) as types_wrong:
        load_job(path)
    lines = str(types_wrong.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["backend", "output", "postprocess.overlay_top"], lines
    assert all(line.startswith(f"{path}: ") for line in lines)
    path.write_text("backend:\n  max_batch: 9999\noutput:\n  video_crf: 99\n")
    with pytest.raises(ConfigError) as ranges_wrong:
        load_job(path)
    assert [line.split(": ")[1] for line in str(ranges_wrong.value).splitlines()] == [
        "backend.max_batch", "output.video_crf"]

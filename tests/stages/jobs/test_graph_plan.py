"""How much /dev/shm a graph takes, and what it does when there is less (a container's 64 MiB)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import write_video
from tests.processes import UNSHARE_MOUNT, VIDPIPE
from vidpipe.pipeline.config import replace_path
from vidpipe.pipeline.errors import ConfigError
from vidpipe.stages.config import JobConfig, with_job_defaults
from vidpipe.stages.jobs.graph import SHM_SHARE, fit_to_shm, plan

MIB = 2**20
FRAME = 640 * 360 * 3


def test_plenty_of_shm_changes_nothing() -> None:
    config = with_job_defaults(JobConfig())
    fitted, graph = fit_to_shm(config, FRAME, 24 * 1024 * MIB)
    assert fitted is config and graph == plan(config, FRAME)


def test_little_shm_halves_the_batch_until_the_rings_fit() -> None:
    config = with_job_defaults(JobConfig())  # batch 128: about 150 MiB at its floor
    fitted, graph = fit_to_shm(config, FRAME, 64 * MIB)
    assert fitted.backend.max_batch < config.backend.max_batch
    assert graph.shm_bytes <= 64 * MIB * SHM_SHARE
    twice = replace_path(fitted, "backend.max_batch", fitted.backend.max_batch * 2)
    assert plan(twice, FRAME, int(64 * MIB * SHM_SHARE)).shm_bytes > 64 * MIB * SHM_SHARE  # the largest that fits


def test_many_workers_are_fewer_once_the_batch_is_one() -> None:
    config = replace_path(with_job_defaults(JobConfig()), "preprocess.workers", 64)  # a 64-core host
    fitted, graph = fit_to_shm(config, FRAME, 64 * MIB)
    assert fitted.backend.max_batch == 1 and 1 <= graph.workers < 64
    assert graph.shm_bytes <= 64 * MIB * SHM_SHARE


def test_no_room_even_at_batch_one_is_one_line_naming_dev_shm() -> None:
    with pytest.raises(ConfigError, match=r"^/dev/shm: 1 MiB free, but even at batch 1 with 1 worker the frame rings"):
        fit_to_shm(with_job_defaults(JobConfig()), 3840 * 2160 * 3, 1 * MIB)


@pytest.mark.parametrize(("size", "code", "line"), [
    ("64m", 0, r"/dev/shm: 6\d MiB free: backend\.max_batch 128 -> (64|32|16), preprocess workers 2 -> 2\b"),
    ("2m", 2, r"/dev/shm: [12] MiB free, but even at batch 1 with 1 worker the frame rings need \d+ MiB"),
])
def test_a_job_in_a_small_dev_shm_runs_or_says_why_in_one_line(tmp_path: Path, size: str, code: int,
                                                                line: str) -> None:
    """/dev/shm replaced by a small tmpfs in a private mount namespace, as in a container."""
    video = write_video(tmp_path / "a.mp4", frames=40, width=640, height=360)
    script = f'mount -t tmpfs -o size={size} tmpfs /dev/shm || exit 99; exec "$@"'
    vidpipe = [*VIDPIPE, "label", str(video), "--out", str(tmp_path / "out"),
               "--backend", "sim", "--no-progress", "--workers", "2"]
    proc = subprocess.run([*UNSHARE_MOUNT, "sh", "-c", script, "sh", *vidpipe], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == code, proc.stderr
    assert re.search(line, proc.stderr) and "Traceback" not in proc.stderr
    if code == 0:
        assert len((tmp_path / "out" / "a.jsonl").read_text().splitlines()) == 40


def test_a_ring_that_does_not_fit_is_an_error_at_creation_not_a_sigbus_later() -> None:
    """Another job can fill /dev/shm after the plan: the ring's memory is taken when it is made."""
    make_ring = ("import multiprocessing, pathlib; from pipeline.shm import SlotRing\n"
                 "try:\n    SlotRing(multiprocessing.get_context('spawn'), 16, 2**20, 'frames')\n"
                 "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
                 "print('left:', sorted(p.name for p in pathlib.Path('/dev/shm').iterdir()))")
    script = 'mount -t tmpfs -o size=8m tmpfs /dev/shm || exit 99; exec "$@"'
    proc = subprocess.run([*UNSHARE_MOUNT, "sh", "-c", script, "sh", sys.executable, "-c", make_ring],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "VidpipeError /dev/shm: no room for the frames ring (16 MiB): No space left on device" in proc.stdout
    assert "left: []" in proc.stdout  # the segment is gone

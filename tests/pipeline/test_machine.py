"""Usable cores: the affinity mask and the cgroup CPU quota, not the host's count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vidpipe.pipeline.machine import cgroup_cpu_quota

PRINT_CORES = [sys.executable, "-c", "from pipeline.machine import usable_cores; print(usable_cores())"]


def write(path: Path, text: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for line in text.split(";"):
        name, _, value = line.partition("=")
        (path / name).write_text(value + "\n")


def test_cgroup_v2_quota_is_the_tightest_on_the_way_up(tmp_path: Path) -> None:
    write(tmp_path, "cpu.max=max 100000")
    write(tmp_path / "kubepods" / "pod1", "cpu.max=400000 100000")
    write(tmp_path / "kubepods" / "pod1" / "c1", "cpu.max=150000 100000")
    assert cgroup_cpu_quota("0::/kubepods/pod1/c1\n", tmp_path) == 1.5
    assert cgroup_cpu_quota("0::/kubepods/pod1\n", tmp_path) == 4.0
    assert cgroup_cpu_quota("0::/\n", tmp_path) is None  # "max": no quota


def test_cgroup_v1_quota_and_no_quota(tmp_path: Path) -> None:
    write(tmp_path / "cpu,cpuacct" / "docker" / "abc", "cpu.cfs_quota_us=200000;cpu.cfs_period_us=100000")
    write(tmp_path / "cpu,cpuacct", "cpu.cfs_quota_us=-1;cpu.cfs_period_us=100000")
    v1 = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n"
    assert cgroup_cpu_quota(v1, tmp_path) == 2.0
    assert cgroup_cpu_quota("4:cpu,cpuacct:/\n", tmp_path) is None
    assert cgroup_cpu_quota("", tmp_path) is None  # no /proc/self/cgroup (not Linux)


def test_an_affinity_mask_limits_the_cores() -> None:
    cpu = str(min(os.sched_getaffinity(0)))  # one this process may use (not always CPU 0)
    out = subprocess.run(["taskset", "-c", cpu, *PRINT_CORES], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_a_real_cgroup_quota_limits_the_cores() -> None:
    """A cgroup v1 CPU quota of half a CPU, as `docker --cpus=0.5` sets it (root and a writable
    cpu hierarchy needed; where the machine has neither, the unit tests above cover the reading)."""
    group = Path("/sys/fs/cgroup/cpu") / f"vidpipe-test-{os.getpid()}"
    if os.cpu_count() == 1 or not os.access(group.parent, os.W_OK):
        pytest.skip("no writable cgroup v1 cpu hierarchy on this machine")
    try:
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup here: {exc}")
    try:
        (group / "cpu.cfs_quota_us").write_text("50000")
        script = f'echo $$ > {group}/cgroup.procs && exec "$@"'
        out = subprocess.run(["sh", "-c", script, "sh", *PRINT_CORES], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "1"
    finally:
        group.rmdir()

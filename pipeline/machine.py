"""How many cores this process may really use, which is what every "one per core" default needs.

os.cpu_count() is the host's count: in a container limited to 2 CPUs on a 64-core host it says
64, and a job sized on it starts 64 preprocess processes that share 2 cores. Two limits count:

* the affinity mask (`taskset`, cpusets: `docker --cpuset-cpus`, Kubernetes static CPU policy);
* the CFS quota of the process's cgroup and its parents (`docker --cpus=2`, Kubernetes CPU limits):
  cgroup v2 `cpu.max` ("200000 100000" = 2 CPUs, "max ..." = none), v1 `cpu.cfs_quota_us` /
  `cpu.cfs_period_us` (-1 = none). A fractional quota rounds up (1.5 CPUs keep 2 processes busy).

Also what is installed here (`package_version`), for --version and vidpipe_build_info.
"""

from __future__ import annotations

import functools
import math
import os
from importlib import metadata
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@functools.cache
def usable_cores() -> int:
    """Cores this process may use: the affinity mask, capped by its cgroup's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(_read(Path("/proc/self/cgroup")), CGROUP_ROOT)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def cgroup_cpu_quota(proc_cgroup: str, root: Path) -> float | None:
    """The tightest CPU quota (in CPUs) on the way from the process's cgroup up to the root;
    None when there is none. `proc_cgroup` is the text of /proc/self/cgroup."""
    quotas = []
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # cgroup v2
            quotas += [_v2_quota(d) for d in _up_from(root, path)]
        elif "cpu" in controllers.split(","):  # cgroup v1
            mount = next((root / m for m in (controllers, "cpu,cpuacct", "cpu") if (root / m).is_dir()), None)
            quotas += [_v1_quota(d) for d in _up_from(mount, path)] if mount is not None else []
    found = [q for q in quotas if q is not None]
    return min(found) if found else None


def _up_from(mount: Path, path: str) -> list[Path]:
    """`mount/path` and each of its parents up to `mount` (a container sees its own cgroup as /)."""
    parts = [p for p in path.strip().split("/") if p]
    return [mount.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _v2_quota(folder: Path) -> float | None:
    fields = _read(folder / "cpu.max").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1_quota(folder: Path) -> float | None:
    return _ratio(_read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us"))


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def package_version(package: str, missing: str = "none") -> str:
    """The installed version of `package`, or `missing`."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return missing

"""Process-tree monitor (Linux /proc): peak RSS, CPU seconds per stage, shared memory in use.

    with TreeMonitor(os.getpid()) as mon:     # or the pid of a vidpipe subprocess
        ...                                    # run the pipeline
    mon.stats()  -> TreeStats

A thread samples every `period_s`: the descendants of `root` (and `root` itself), each one's
peak RSS (VmHWM, kept by the kernel, so short peaks between samples are not missed while the
process lives), its CPU time and its name (stages name themselves `vp:<stage>`), and the size
of the vidpipe segments `root` created in /dev/shm. RSS counts the shared-memory pages a process touched, so
the sum over the tree counts the rings once per process that maps them: `rss_private` (peak of
RssAnon + RssFile per process) is reported beside it, and `shm` separately. The shm timeline
tells when the rings are warm (every page they will use has been touched once).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class _Proc:
    name: str
    hwm_kb: int = 0
    private_kb: int = 0
    cpu_s: float = 0.0


@dataclass(frozen=True)
class TreeStats:
    rss_mb: float  # sum over processes of each one's peak RSS (shared pages counted per process)
    rss_private_mb: float  # sum of each process's peak private RSS (anon + file-backed)
    shm_mb: float  # peak size of vidpipe segments in /dev/shm
    processes: int
    cpu_s: dict[str, float] = field(default_factory=dict)  # process name -> CPU seconds


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text()
            out.extend(int(c) for c in text.split())
    except OSError:
        pass
    return out


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(_children(pid))
    return pids


def _read(pid: int) -> tuple[str, int, int, float] | None:
    """(name, VmHWM kB, private RSS kB, CPU s) of `pid`, None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)

    def kb(key: str) -> int:
        return int(fields.get(key, "0 kB").split()[0])

    after = stat[stat.rindex(")") + 2 :].split()  # fields from 3 on; utime/stime are 14/15
    cpu = (int(after[11]) + int(after[12])) / TICKS
    name = fields.get("Name", "?").strip()
    return name, kb("VmHWM"), kb("RssAnon") + kb("RssFile"), cpu


def system_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat), for the foreign load."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / TICKS


def shm_bytes(prefix: str = "vidpipe_") -> int:
    total = 0
    for p in Path("/dev/shm").glob(f"{prefix}*"):
        with contextlib.suppress(OSError):  # a segment unlinked meanwhile
            total += p.stat().st_blocks * 512  # what is really allocated, not the nominal size
    return total


class TreeMonitor:
    def __init__(self, root: int | None = None, period_s: float = 0.1) -> None:
        self.root = root if root is not None else os.getpid()
        self.period_s = period_s
        self._procs: dict[int, _Proc] = {}
        self._shm_peak = 0
        self._shm: list[tuple[float, int]] = []  # (monotonic, bytes of the vidpipe segments)
        self._timeline: list[tuple[float, dict[int, float]]] = []  # (monotonic, pid -> CPU s)
        self._system: list[tuple[float, float]] = []  # (monotonic, CPU s busy on the whole machine)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-monitor", daemon=True)

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        now = time.monotonic()
        for pid in _tree(self.root):
            info = _read(pid)
            if info is None:
                continue
            name, hwm, private, cpu = info
            p = self._procs.setdefault(pid, _Proc(name))
            p.name = name  # stages rename themselves after start
            p.hwm_kb, p.private_kb, p.cpu_s = max(p.hwm_kb, hwm), max(p.private_kb, private), max(p.cpu_s, cpu)
        self._timeline.append((now, {pid: p.cpu_s for pid, p in self._procs.items()}))
        self._system.append((now, system_busy_s() - time.process_time()))  # not counting this monitor
        self._shm.append((now, shm_bytes(f"vidpipe_{self.root}_")))  # segments named by their creator
        self._shm_peak = max(self._shm_peak, self._shm[-1][1])

    def shm_warm_time(self, share: float = 0.98) -> float:
        """When the shared memory in use first reached `share` of its peak: from then on no
        process pays for first touches of ring pages (allocation + zeroing, ~2.7 us a page here)."""
        return next((t for t, b in self._shm if b >= share * self._shm_peak), 0.0)

    def foreign_load(self, t0: float, t1: float) -> float:
        """Cores busy with processes outside the tree between two monotonic times: another job
        on the machine makes the measurement noisy; benchmarks report this beside their numbers."""
        if len(self._system) < 2 or t1 <= t0:
            return 0.0
        a = min(self._system, key=lambda s: abs(s[0] - t0))
        b = min(self._system, key=lambda s: abs(s[0] - t1))
        ours = sum(self.cpu_between(a[0], b[0]).values())
        return max(0.0, (b[1] - a[1] - ours) / max(b[0] - a[0], 1e-9))

    def cpu_between(self, t0: float, t1: float) -> dict[str, float]:
        """CPU seconds per process name spent between two monotonic times (nearest samples)."""
        if not self._timeline:
            return {}
        a = min(self._timeline, key=lambda s: abs(s[0] - t0))[1]
        b = min(self._timeline, key=lambda s: abs(s[0] - t1))[1]
        out: dict[str, float] = {}
        for pid, cpu in b.items():
            name = self._procs[pid].name
            out[name] = out.get(name, 0.0) + cpu - a.get(pid, 0.0)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.period_s)  # sampling period

    def stats(self, exclude_root: bool = False) -> TreeStats:
        procs = {pid: p for pid, p in self._procs.items() if not (exclude_root and pid == self.root)}
        cpu: dict[str, float] = {}
        for p in procs.values():
            cpu[p.name] = cpu.get(p.name, 0.0) + p.cpu_s
        return TreeStats(
            rss_mb=sum(p.hwm_kb for p in procs.values()) / 1024,
            rss_private_mb=sum(p.private_kb for p in procs.values()) / 1024,
            shm_mb=self._shm_peak / 2**20,
            processes=len(procs),
            cpu_s=dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
        )

"""Rates and latency percentiles over sliding windows: fps of a capture thread, p50/p99 of a
live stream. Plain Python, thread-safe where it says so; knows nothing about what it measures."""

from __future__ import annotations

import math
import threading
from collections import deque


class LatencyWindow:
    """Percentiles over the last `size` samples (nearest rank), thread-safe."""

    def __init__(self, size: int = 1000) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)

    def __len__(self) -> int:
        with self._lock:
            return len(self._samples)

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0 < q <= 100) in seconds, None without samples."""
        return self.percentiles((q,))[0]

    def percentiles(self, qs: tuple[float, ...] = (50, 95, 99)) -> list[float | None]:
        with self._lock:
            ordered = sorted(self._samples)
        if not ordered:
            return [None for _ in qs]
        return list(nearest_rank(ordered, qs))


def nearest_rank(ordered: list[float], qs: tuple[float, ...]) -> list[float]:
    """Percentiles of sorted, non-empty `ordered` by nearest rank: for each q, the smallest sample
    with at least q% of the samples at or below it."""
    n = len(ordered)
    return [ordered[min(n - 1, max(0, math.ceil(q * n / 100) - 1))] for q in qs]


class RateMeter:
    """Events per second over a sliding window (for fps); not thread-safe (callers lock)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._trim(now)

    def rate(self, now: float) -> float:
        self._trim(now)
        t = self._times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) >= 2 and t[-1] > t[0] else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

"""One back-off policy for every retry: reconnecting a source, restarting a crashed stage,
delivering an event again.

    policy = BackoffPolicy(initial_s=0.5, max_s=30.0, jitter=0.5)
    policy.delay(attempt)          # 0.5, 1, 2, 4 ... capped at 30 s, each drawn from [d * (1 - jitter), d]
    retry = Backoff(policy)        # the same, counting attempts: retry.next_delay(), retry.reset()
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    initial_s: float = 0.5  # the first delay
    max_s: float = 30.0  # no delay is longer
    factor: float = 2.0  # each attempt multiplies the delay by this
    jitter: float = 0.0  # each delay is drawn from [d * (1 - jitter), d]: many cameras spread out

    def __post_init__(self) -> None:
        if not (self.initial_s > 0 and self.max_s >= self.initial_s and self.factor >= 1 and 0 <= self.jitter <= 1):
            raise ValueError("backoff needs 0 < initial_s <= max_s, factor >= 1, 0 <= jitter <= 1")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay before retry number `attempt` (0: the first retry)."""
        base = min(self.max_s, self.initial_s * self.factor ** min(max(attempt, 0), 64))
        return base * (1.0 - self.jitter * (rng or random).random()) if self.jitter else base


class Backoff:
    """A policy with its attempts counted; deterministic with an injected random.Random."""

    def __init__(self, policy: BackoffPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.rng = rng or random.Random()
        self.attempts = 0

    def next_delay(self) -> float:
        delay = self.policy.delay(self.attempts, self.rng)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0

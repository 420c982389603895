"""pipeline.backoff: the one back-off policy of source reconnects, stage restarts and event retries."""

from __future__ import annotations

import random

import pytest

from vidpipe.pipeline.backoff import Backoff, BackoffPolicy


def test_backoff_exponential_jittered_capped_and_deterministic() -> None:
    policy = BackoffPolicy(0.5, 4.0, factor=2.0, jitter=0.5)
    a, b = Backoff(policy, random.Random(7)), Backoff(policy, random.Random(7))
    delays = [a.next_delay() for _ in range(8)]
    assert delays == [b.next_delay() for _ in range(8)]
    for d, base in zip(delays, [0.5, 1, 2, 4, 4, 4, 4, 4], strict=True):
        assert base * 0.5 <= d <= base
    a.reset()
    assert a.next_delay() <= 0.5
    assert Backoff(BackoffPolicy(1, 1)).next_delay() == 1.0
    assert [BackoffPolicy(0.5, 10.0).delay(n) for n in range(6)] == [0.5, 1, 2, 4, 8, 10]
    with pytest.raises(ValueError):
        BackoffPolicy(0, 1)

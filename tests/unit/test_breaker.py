"""The circuit breaker's states, driven by a fake clock."""

from __future__ import annotations

from shadowtutor.collect.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def opened(failures: int = 2, cooldown: float = 10.0) -> tuple[Breaker, Clock]:
    clock = Clock()
    b = Breaker(failures, cooldown, clock=clock)
    for _ in range(failures):
        assert b.allow()
        b.failure()
    return b, clock


def test_opens_after_consecutive_failures_only() -> None:
    b = Breaker(3, 10.0, clock=Clock())
    b.failure(), b.failure(), b.success(), b.failure(), b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert b.state == "open" and not b.allow() and b.opened_count == 1


def test_one_probe_after_the_cooldown_and_its_outcome_decides() -> None:
    b, clock = opened()
    clock.now = 9.9
    assert not b.allow()
    clock.now = 10.0
    assert b.state == "half-open"
    assert b.allow() and not b.allow()  # one probe at a time
    b.failure()
    assert b.state == "open" and b.opened_count == 2
    clock.now = 20.0
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow()


def test_an_abandoned_probe_does_not_wedge_it_half_open() -> None:
    """A probe cancelled mid-call (asyncio.wait_for around an async create) never reports
    success or failure; after one more cooldown another probe may pass."""
    b, clock = opened()
    clock.now = 10.0
    assert b.allow()  # the probe's caller is cancelled: no success(), no failure()
    clock.now = 19.9
    assert not b.allow()
    clock.now = 20.0
    assert b.allow() and b.abandoned_probes == 1
    b.success()
    assert b.state == "closed"

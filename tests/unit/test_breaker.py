"""The student's circuit breaker, driven by a fake clock: closed -> open -> half-open -> ..."""

from __future__ import annotations

import pytest

from shadowtutor.backends.breaker import Breaker


@pytest.fixture
def clock() -> list[float]:
    return [0.0]


def breaker(clock: list[float], failures: int = 3, cooldown: float = 10.0) -> Breaker:
    return Breaker(failures, cooldown, clock=lambda: clock[0])


def test_opens_after_the_consecutive_failures_only(clock: list[float]) -> None:
    b = breaker(clock)
    b.failure()
    b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert b.state == "open" and not b.allow() and b.opened_count == 1


def test_a_success_resets_the_count(clock: list[float]) -> None:
    b = breaker(clock)
    b.failure()
    b.failure()
    b.success()
    b.failure()
    b.failure()
    assert b.state == "closed"  # 2 + 2 failures, never 3 in a row


def test_after_the_cooldown_one_probe_passes(clock: list[float]) -> None:
    b = breaker(clock, failures=1)
    b.failure()
    clock[0] = 9.99
    assert b.state == "open" and not b.allow()
    clock[0] = 10.0
    assert b.state == "half-open"
    assert b.allow() and not b.allow()  # one probe, the others wait for its outcome
    assert b.state == "half-open"


def test_a_failed_probe_opens_again_for_a_full_cooldown(clock: list[float]) -> None:
    b = breaker(clock, failures=2)
    b.failure()
    b.failure()
    clock[0] = 10.0
    assert b.allow()
    b.failure()  # the probe failed: open again at once, counted as a new opening
    assert b.state == "open" and b.opened_count == 2
    clock[0] = 19.0
    assert not b.allow()
    clock[0] = 20.0
    assert b.allow()


def test_a_good_probe_closes(clock: list[float]) -> None:
    b = breaker(clock, failures=1)
    b.failure()
    clock[0] = 10.0
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow() and b.allow()
    assert b.opened_count == 1


def test_more_failures_while_open_do_not_count_as_openings(clock: list[float]) -> None:
    b = breaker(clock, failures=1)
    b.failure()
    b.failure()  # a worker that was already calling when it opened
    assert b.opened_count == 1


def test_at_least_one_failure_opens_it() -> None:
    assert Breaker(0, 1.0).failures == 1


def test_an_abandoned_probe_does_not_wedge_it_half_open(clock: list[float]) -> None:
    """A probe cancelled mid-call (asyncio.wait_for around an async create) never reports
    success or failure; after one more cooldown another probe may pass, counted."""
    b = breaker(clock, failures=1)
    b.failure()
    clock[0] = 10.0
    assert b.allow()  # the probe's caller is cancelled: no success(), no failure()
    clock[0] = 19.9
    assert not b.allow()
    clock[0] = 20.0
    assert b.allow() and b.abandoned_probes == 1
    b.success()
    assert b.state == "closed"

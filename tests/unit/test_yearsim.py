"""The year bench's fast looks (``shadowtutor.testing.yearsim``) give the status ``decide``
gives, look by look: it measures the gate itself, not a copy of it."""

from __future__ import annotations

import numpy as np
import pytest

from shadowtutor.gate import criteria
from shadowtutor.testing import yearsim
from shadowtutor.testing.gatesim import Student
from tests.support.gatecases import config

GOOD = (0.01, 0.02, 0.07, 0.30, 0.60)
CLOSE = (0.02, 0.04, 0.10, 0.40, 0.44)  # mean 4.20
# Students near each bar, so the criterion goes from not passing to PASS within the looks.
NEAR = {
    "review_score": Student(0.995, 500, 0.5, 0.6, CLOSE),
    "success_rate": Student(0.992, 500, 0.5, 0.6, GOOD),
    "p95_latency": Student(0.999, yearsim.at_p95(1300.0), 0.5, 0.6, GOOD),
    "similarity": Student(0.995, 500, 0.5, 0.47, GOOD),
}


def _cfg() -> criteria.GateConfig:
    return config()


@pytest.mark.parametrize("key", sorted(NEAR))
def test_fast_looks_give_decides_status_on_every_look(key: str) -> None:
    """Two students sharing the budget, 40 daily looks, a criteria change (new epoch) on day
    25: every look's status of the criterion through ``decide`` equals the fast look's, and
    both see it PASS at some look (the agreement covers the flip, not only "never")."""
    cfg = _cfg()
    student = NEAR[key]
    pairs = 600 if key != "review_score" else 150
    streams = [
        yearsim.draw(
            student,
            np.random.default_rng([5, k]),
            days=40,
            pairs=pairs,
            reviews=16,
            bar_ms=1500.0,
            keep=True,
        )
        for k in range(2)
    ]
    got = yearsim.decide_year(cfg, key, streams, change=25)
    fast = yearsim.first_pass(cfg, key, streams, change=25)
    assert got.looks == 80 and got.differ == 0 and got.go_without_pass == 0
    assert fast is not None and fast < 40


def test_only_draws_what_the_criterion_reads_and_the_rest_the_same() -> None:
    """The bench skips the arrays a criterion does not read; what it draws is the same."""
    student = NEAR["p95_latency"]
    full = yearsim.draw(student, np.random.default_rng(1), days=3, pairs=50, reviews=8,
                        bar_ms=1500.0)  # fmt: skip
    part = yearsim.draw(student, np.random.default_rng(1), days=3, pairs=50, reviews=8,
                        bar_ms=1500.0, only="p95_latency")  # fmt: skip
    assert (full.ok == part.ok).all() and (full.below == part.below).all()
    assert (full.scores == part.scores).all() and part.bin_counts.sum() == 0

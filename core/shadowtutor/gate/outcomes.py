"""What every gate criterion is made of: its outcome words, the :class:`Criterion` row, and
the small rules shared by the criteria (three-way status from a bound pair, how many more
samples a PASS needs, what is missing in words)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
# A criterion that does not take part in the decision (similarity where it does not predict
# the review score: the reviews decide); shown with why.
LEFT_OUT = "LEFT OUT"


@dataclass(frozen=True)
class Criterion:
    key: str  # pairs | similarity | review_score | p95_latency | success_rate | critical_errors
    label: str
    category: str
    status: str  # PASS | FAIL | INCONCLUSIVE
    n: int
    estimate: float | None
    bound: float | None  # the bound compared with the threshold to PASS
    threshold: float | None
    method: str
    missing: str = ""  # plain words: what would change the status; empty when PASS
    critical: bool = False
    needed: int | None = None  # about this many more samples (of ``n``'s kind) to PASS
    saved: int | None = None  # human reviews the judge saved (prediction-powered criteria)
    upper: float | None = None  # the bound on the other side (FAIL when it misses)


def three_way(lower: float, upper: float, threshold: float, higher_is_better: bool) -> str:
    if higher_is_better:
        return PASS if lower >= threshold else (FAIL if upper < threshold else INCONCLUSIVE)
    return PASS if upper <= threshold else (FAIL if lower > threshold else INCONCLUSIVE)


def scaled_needed(passes: Callable[[float], bool], n: int, limit: float = 1e4) -> int | None:
    """The smallest total sample size, as ``n * k``, at which ``passes(k)`` (the same data
    distribution, ``k`` times as much of it) would PASS; None beyond ``limit`` times ``n``."""
    if n <= 0:
        return None
    k = 1.0
    while not passes(k):
        k *= 2
        if k > limit:
            return None
    lo, hi = k / 2, k
    while hi - lo > max(0.02 * lo, 1 / n):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if passes(mid) else (mid, hi)
    return math.ceil(n * hi)


def mean_missing(
    status: str,
    est: float,
    thr: float,
    n: int,
    need: int | None,
    what: str,
    name: str,
    project: bool = True,
) -> str:
    if status == PASS:
        return ""
    if status == FAIL:
        return f"mean {name} {est:.3g} is confidently below {thr:g}: the student must improve"
    if not project and est > thr:
        return f"more {what} needed (mean {est:.3g} is close to {thr:g})"
    if need is None:
        return f"mean {name} {est:.3g} is not above {thr:g}; more data is unlikely to change that"
    return f"about {max(need - n, 1):,} more {what} needed (mean {est:.3g} is close to {thr:g})"


def inconclusive(
    key: str,
    label: str,
    cat: str,
    n: int,
    est: float | None,
    thr: float | None,
    how: str,
    missing: str,
) -> Criterion:
    """A criterion without the data to decide: INCONCLUSIVE, so no bound; ``missing`` says what
    would change that."""
    return Criterion(key, label, cat, INCONCLUSIVE, n, est, None, thr, how, missing)

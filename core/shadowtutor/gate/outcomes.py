"""What every gate criterion is made of: its outcome words, the :class:`Criterion` row, and
the small rules shared by the criteria (three-way status from a bound pair, how many more
samples a PASS needs, what is missing in words)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shadowtutor.gate import stats

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
    kind: str = "plain"  # the traffic kind the criterion is about (plain, tools, json_schema...)


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


def rate(
    key: str,
    label: str,
    cat: str,
    hits: int,
    n: int,
    thr: float,
    conf: float,
    *,
    what: str,
    kind: str = "plain",
    project: bool = True,
    note: str = "",
) -> Criterion:
    """A rate criterion: ``hits`` of ``n`` ``what`` (e.g. "tools pairs whose calls agree"),
    its lower bound from the betting confidence sequence the success rate uses (exact at any
    size, anytime valid) against ``thr``; ``note`` goes after the method (what was left out)."""
    how = "betting confidence sequence, lower bound" + (f"; {note}" if note else "")
    if n == 0:
        return Criterion(key, label, cat, INCONCLUSIVE, 0, None, None, thr, how,
                         f"no {cat} {what} yet", kind=kind)  # fmt: skip
    lo, hi = stats.betting_rate_bounds(hits, n, confidence=conf)
    est = hits / n
    status = three_way(lo, hi, thr, True)
    missing, needed = "", None
    if status == FAIL:
        missing = f"{est:.1%} of {n:,} {cat} {what}: confidently below {thr:.0%}"
    elif status == INCONCLUSIVE:
        need = None
        if project and est > thr:
            cnts = np.asarray([n - hits, hits], dtype=float)

            def passes(f: float) -> bool:
                b = stats.betting_mean_bounds([0.0, 1.0], cnts * f, lo=0.0, hi=1.0, confidence=conf)
                return b is not None and b[0] >= thr

            need = scaled_needed(passes, n)
        needed = None if need is None else max(need - n, 1)
        missing = (
            f"about {needed:,} more {cat} {what} needed ({est:.1%})"
            if needed
            else f"more {cat} {what} needed ({est:.1%})"
            if est > thr
            else f"{est:.1%} is not above {thr:.0%}; more data will not fix that"
        )
    return Criterion(
        key, label, cat, status, n, est, lo, thr, how, missing, needed=needed, upper=hi, kind=kind
    )

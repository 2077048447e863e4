"""The criteria on serving: the success rate (a betting confidence sequence) and the P95
latency (order statistics ranked by a confidence sequence), over every request asked."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from shadowtutor.gate import stats
from shadowtutor.gate.outcomes import (
    FAIL,
    INCONCLUSIVE,
    Criterion,
    inconclusive,
    scaled_needed,
    three_way,
)

if TYPE_CHECKING:  # criteria imports this module: its types only, for the annotations
    from shadowtutor.gate.criteria import Aggregate, GateConfig


def p95(
    config: GateConfig, cat: str, agg: Aggregate, conf: float, project: bool = True
) -> Criterion:
    """The P95 latency's upper bound over every request asked: errors and timeouts count as
    slower than any answer (a student that times out on its slow requests must not get a
    better P95 for it)."""
    label = "Student P95 latency (ms)"
    how = "order-statistic confidence sequence, upper bound; errors and timeouts count as slowest"
    thr = config.max_p95_latency_ms
    failed = max(0, agg.pairs - agg.successes)
    data = np.concatenate(  # sorted; a year of daily looks sorts 219,000 latencies a day
        [np.sort(np.asarray(agg.latencies_ms, dtype=float)), np.full(failed, math.inf)]
    )
    n = len(data)
    if n == 0:
        return inconclusive("p95_latency", label, cat, 0, None, thr, how, f"no {cat} requests yet")
    est = _finite(float(np.quantile(data, 0.95, method="higher")))
    lo, hi = stats.quantile_cs_bounds(data, 0.95, confidence=conf)
    if hi is None:
        need_n = next(
            m for m in range(n, 10**6, 5) if stats.quantile_cs_ranks(m, 0.95, confidence=conf)[1]
        )
        return Criterion(
            "p95_latency",
            label,
            cat,
            INCONCLUSIVE,
            n,
            est,
            None,
            thr,
            how,
            f"{need_n - n:,} more {cat} requests needed for a P95 bound",
            needed=need_n - n,
        )
    status = three_way(lo if lo is not None else -math.inf, hi, thr, False)
    missing, needed = "", None
    shown = "over 5 % failed" if est is None else f"{est:,.0f} ms"
    if status == FAIL:
        missing = f"P95 {shown} is confidently above {thr:,.0f} ms: the student must get faster"
    elif status == INCONCLUSIVE:
        need = _quantile_needed(data, thr, 0.95, conf) if project else None
        needed = None if need is None else max(need - n, 1)
        missing = (
            f"about {needed:,} more {cat} requests needed (P95 {shown})"
            if needed
            else f"more {cat} requests needed (P95 {shown})"
            if not project and est is not None and est < thr
            else f"P95 {shown} is not below {thr:,.0f} ms; more data will not fix that"
        )
    return Criterion(
        "p95_latency", label, cat, status, n, est, _finite(hi), thr, how, missing,
        needed=needed, upper=_finite(lo) if lo is not None else None,
    )  # fmt: skip


def _finite(value: float) -> float | None:
    """A latency as stored: None for "slower than any answer" (a failed request)."""
    return value if math.isfinite(value) else None


def _quantile_needed(data: np.ndarray, threshold: float, q: float, conf: float) -> int | None:
    """Sample size at which data distributed like ``data`` would have its anytime upper
    quantile bound at or below ``threshold``."""
    values = np.sort(np.asarray(data, dtype=float))
    share_below = float(np.searchsorted(values, threshold, side="right")) / len(values)
    if share_below <= q:
        return None
    m = max(len(values), 20)
    while m < 10**7:
        _, hi = stats.quantile_cs_ranks(m, q, confidence=conf)
        if hi is not None and hi / m <= share_below:
            return m
        m = int(m * 1.25) + 1
    return None


def success(
    config: GateConfig, cat: str, agg: Aggregate, conf: float, project: bool = True
) -> Criterion:
    label, how = "Success rate", "betting confidence sequence, lower bound"
    if agg.unsupported:  # the student's server refused a feature: not a quality failure
        how += f"; {agg.unsupported:,} unsupported requests counted apart, not as failures"
    thr, n, k = config.min_success_rate, agg.pairs, agg.successes
    if n == 0:
        return inconclusive(
            "success_rate", label, cat, 0, None, thr, how, f"no {cat} requests to the student yet"
        )
    lo, hi = stats.betting_rate_bounds(k, n, confidence=conf)
    est = k / n
    status = three_way(lo, hi, thr, True)
    missing, needed = "", None
    if status == FAIL:
        missing = (
            f"{n - k:,} of {n:,} {cat} requests failed ({1 - est:.1%}): fix errors and timeouts"
        )
    elif status == INCONCLUSIVE:
        need = None
        if project and est > thr:
            cnts = np.asarray([n - k, k], dtype=float)

            def passes(f: float) -> bool:
                b = stats.betting_mean_bounds([0.0, 1.0], cnts * f, lo=0.0, hi=1.0, confidence=conf)
                return b is not None and b[0] >= thr

            need = scaled_needed(passes, n)
        needed = None if need is None else max(need - n, 1)
        missing = (
            f"about {needed:,} more {cat} requests needed (success {est:.1%})"
            if needed
            else f"more {cat} requests needed (success {est:.1%})"
            if not project and est > thr
            else f"success rate {est:.1%} is not above {thr:.0%}; more data will not fix that"
        )
    return Criterion(
        "success_rate", label, cat, status, n, est, lo, thr, how, missing, needed=needed, upper=hi
    )

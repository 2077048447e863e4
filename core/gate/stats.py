"""Confidence bounds for the deploy gate: plain functions over plain numbers.

Every function here returns one-sided bounds, each of which holds with probability
``confidence`` (so ``(lower, upper)`` together form a two-sided interval at
``2 * confidence - 1``). The gate says PASS only when the bound on the safe side clears the
threshold, FAIL only when the bound on the other side misses it, and INCONCLUSIVE otherwise.

- rates (success rate): the Wilson score interval, which behaves at rates near 0 and 1 where
  the normal approximation does not;
- a quantile (P95 latency): distribution-free order statistics; the rank is chosen from the
  binomial distribution, so no assumption about the latency distribution is made;
- means (similarity, review score): the bootstrap (BCa: bias-corrected and accelerated
  percentiles), seeded so that the same data always gives the same bound. Values may come
  grouped as ``(value, count)``, which makes a bootstrap over 20,000 pairs cost a multinomial
  draw over a hundred bins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np


def z_value(confidence: float) -> float:
    """The standard normal quantile for a one-sided bound at ``confidence``."""
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    return NormalDist().inv_cdf(confidence)


# --- rates -------------------------------------------------------------------------------


def wilson_bounds(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """One-sided Wilson lower and upper bounds of a rate; ``(0, 1)`` when ``n`` is 0."""
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z = z_value(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_n_needed(rate: float, threshold: float, *, confidence: float = 0.95) -> int | None:
    """Sample size at which an observed ``rate`` would have its Wilson lower bound at or above
    ``threshold``; None when the rate itself is not above the threshold."""
    if rate <= threshold:
        return None
    n = 1
    while n < 10**9:
        if wilson_bounds(round(rate * n), n, confidence=confidence)[0] >= threshold:
            break
        n *= 2
    lo, hi = n // 2, n
    while lo + 1 < hi:  # the bound is monotone enough in n for a bisection to be useful
        mid = (lo + hi) // 2
        if wilson_bounds(round(rate * mid), mid, confidence=confidence)[0] >= threshold:
            hi = mid
        else:
            lo = mid
    return hi


# --- quantiles ---------------------------------------------------------------------------


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k), exact (computed in log space)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return float(_binom_cdf_all(n, p)[k])


def _binom_cdf_all(n: int, p: float) -> np.ndarray:
    """P(Binomial(n, p) <= k) for k = 0..n."""
    ks = np.arange(n + 1)
    log_fact = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, n + 1)))))
    log_pmf = log_fact[n] - log_fact[ks] - log_fact[n - ks]
    log_pmf += ks * math.log(p) + (n - ks) * math.log1p(-p)
    pmf = np.exp(log_pmf - log_pmf.max())
    cdf = np.cumsum(pmf) / pmf.sum()
    return np.minimum(cdf, 1.0)


def quantile_ranks(n: int, q: float, *, confidence: float = 0.95) -> tuple[int | None, int | None]:
    """1-based ranks ``(lo, hi)`` of the order statistics that bound the ``q`` quantile:
    ``x_(hi) >= quantile`` and ``x_(lo) <= quantile``, each with probability ``confidence``.
    None when ``n`` is too small for that side (for q=0.95 at 95 %, the upper side needs 59)."""
    if n <= 0:
        return None, None
    cdf = _binom_cdf_all(n, q)
    # P(x_(r) >= xi_q) = P(Bin(n, q) <= r - 1): the smallest r reaching the confidence.
    ups = np.nonzero(cdf[:n] >= confidence)[0]
    hi = int(ups[0]) + 1 if len(ups) else None
    # P(x_(r) <= xi_q) = P(Bin(n, q) >= r) = 1 - cdf[r - 1]: the largest such r.
    downs = np.nonzero(1 - cdf[:n] >= confidence)[0]
    lo = int(downs[-1]) + 1 if len(downs) else None
    return lo, hi


def quantile_bounds(
    values: Sequence[float], q: float = 0.95, *, confidence: float = 0.95
) -> tuple[float | None, float | None]:
    """Distribution-free lower and upper confidence bounds of the ``q`` quantile."""
    data = np.sort(np.asarray(values, dtype=float))
    lo, hi = quantile_ranks(len(data), q, confidence=confidence)
    return (
        None if lo is None else float(data[lo - 1]),
        None if hi is None else float(data[hi - 1]),
    )


def quantile_n_needed(
    values: Sequence[float], threshold: float, q: float = 0.95, *, confidence: float = 0.95
) -> int | None:
    """Sample size at which data distributed like ``values`` would have its upper quantile
    bound at or below ``threshold``; None when the data's own quantile is above it."""
    data = np.sort(np.asarray(values, dtype=float))
    if len(data) == 0:
        return None
    share_below = float(np.searchsorted(data, threshold, side="right")) / len(data)
    if share_below <= q:
        return None
    n = 59
    while n < 10**7:
        _, hi = quantile_ranks(n, q, confidence=confidence)
        if hi is not None and hi / n <= share_below:
            return n
        n = int(n * 1.25) + 1
    return None


# --- means -------------------------------------------------------------------------------


def bootstrap_mean_bounds(
    values: Sequence[float],
    counts: Sequence[int] | None = None,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Bootstrap (BCa) lower and upper bounds of a mean; None without data.

    With ``counts``, ``values[i]`` occurs ``counts[i]`` times (review scores 1..5, or
    similarity bins each at the mean of its members); resampling is then a multinomial draw.
    """
    vals = np.asarray(values, dtype=float)
    cnts = (
        np.ones(len(vals), dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
    )
    if len(vals) != len(cnts):
        raise ValueError("values and counts differ in length")
    if len(vals) != len(np.unique(vals)) or counts is None:  # group equal values
        uniq, inverse = np.unique(vals, return_inverse=True)
        vals, cnts = uniq, np.bincount(inverse, weights=cnts, minlength=len(uniq)).astype(np.int64)
    keep = cnts > 0
    vals, cnts = vals[keep], cnts[keep]
    n = int(cnts.sum())
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    if len(vals) <= 4096:
        draws = rng.multinomial(n, cnts / n, size=resamples)
        means = draws @ vals / n
    else:  # many distinct values: resample indices in chunks to bound the memory used
        flat = np.repeat(vals, cnts)
        chunk = max(1, 2_000_000 // n)
        parts = [
            flat[rng.integers(0, n, size=(min(chunk, resamples - i), n))].mean(axis=1)
            for i in range(0, resamples, chunk)
        ]
        means = np.concatenate(parts)
    lo_p, hi_p = _bca_levels(means, vals, cnts, confidence)
    return float(np.quantile(means, lo_p)), float(np.quantile(means, hi_p))


def _bca_levels(
    means: np.ndarray, vals: np.ndarray, cnts: np.ndarray, confidence: float
) -> tuple[float, float]:
    """BCa percentile levels: the plain percentile bootstrap under-covers on small, skewed
    samples (review scores piled up at 4 and 5); bias correction and acceleration (from the
    jackknife, computed per distinct value) fix most of it."""
    n = int(cnts.sum())
    mean = float(vals @ cnts / n)
    b = len(means)
    share = (np.count_nonzero(means < mean) + 0.5 * np.count_nonzero(means == mean)) / b
    z0 = NormalDist().inv_cdf(min(max(share, 1 / (b + 1)), b / (b + 1)))
    accel = 0.0
    if n > 1:
        loo = (n * mean - vals) / (n - 1)  # the mean without one copy of each value
        dev = float(loo @ cnts / n) - loo
        den = 6 * float(cnts @ dev**2) ** 1.5
        accel = float(cnts @ dev**3) / den if den > 0 else 0.0
    levels = []
    for z in (-z_value(confidence), z_value(confidence)):
        shifted = z0 + (z0 + z) / (1 - accel * (z0 + z))
        levels.append(NormalDist().cdf(shifted))
    return levels[0], levels[1]


def grouped_mean_sd(values: Sequence[float], counts: Sequence[int]) -> tuple[float, float, int]:
    """Mean, standard deviation and size of grouped data."""
    vals = np.asarray(values, dtype=float)
    cnts = np.asarray(counts, dtype=float)
    n = float(cnts.sum())
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(vals @ cnts / n)
    var = float(((vals - mean) ** 2) @ cnts / max(n - 1, 1))
    return mean, math.sqrt(var), int(n)


def mean_n_needed(
    mean: float, sd: float, threshold: float, *, confidence: float = 0.95
) -> int | None:
    """Sample size at which a lower bound ``mean - z * sd / sqrt(n)`` reaches ``threshold``;
    None when the mean is not above the threshold."""
    if not mean > threshold:
        return None
    if sd == 0:
        return 1
    return math.ceil((z_value(confidence) * sd / (mean - threshold)) ** 2)

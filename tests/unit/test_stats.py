"""Confidence bounds: known values, edge cases and coverage over simulated samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shadowtutor.gate import stats


@pytest.mark.parametrize(
    ("k", "n", "conf", "lo", "hi"),
    [
        # two-sided 95 % Wilson intervals (z = 1.96) from the literature, as one-sided 97.5 %
        (8, 10, 0.975, 0.4902, 0.9433),
        (0, 10, 0.975, 0.0, 0.2775),
        (10, 10, 0.975, 0.7225, 1.0),
        (50, 100, 0.975, 0.4038, 0.5962),
        (980, 1000, 0.95, 0.9711, 0.9863),
    ],
)
def test_wilson_known_values(k: int, n: int, conf: float, lo: float, hi: float) -> None:
    got = stats.wilson_bounds(k, n, confidence=conf)
    assert got == pytest.approx((lo, hi), abs=6e-4)


@pytest.mark.parametrize(("k", "n"), [(-1, 10), (11, 10), (1, -1)])
def test_wilson_rejects_impossible_counts(k: int, n: int) -> None:
    with pytest.raises(ValueError):
        stats.wilson_bounds(k, n)


def test_wilson_without_data_is_uninformative() -> None:
    assert stats.wilson_bounds(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("rate", "threshold", "expect"),
    [(0.99, 0.98, (300, 1000)), (0.98, 0.98, None), (0.97, 0.98, None), (1.0, 0.98, (100, 200))],
)
def test_wilson_n_needed(rate: float, threshold: float, expect: tuple | None) -> None:
    n = stats.wilson_n_needed(rate, threshold)
    if expect is None:
        assert n is None
    else:
        assert expect[0] <= n <= expect[1]
        assert stats.wilson_bounds(round(rate * n), n)[0] >= threshold


def _brute_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize(
    ("k", "n", "p"), [(0, 5, 0.3), (3, 10, 0.5), (55, 60, 0.95), (95, 100, 0.9)]
)
def test_binom_cdf_matches_brute_force(k: int, n: int, p: float) -> None:
    assert stats.binom_cdf(k, n, p) == pytest.approx(_brute_cdf(k, n, p), rel=1e-9)


@pytest.mark.parametrize(
    ("n", "lo", "hi"),
    [
        (0, None, None),
        (58, 52, None),  # 1 - 0.95**58 < 0.95: even the maximum is no 95 % upper bound
        (59, 53, 59),
        (100, 91, 99),
        (1000, 938, 962),
    ],
)
def test_quantile_ranks(n: int, lo: int | None, hi: int | None) -> None:
    got_lo, got_hi = stats.quantile_ranks(n, 0.95, confidence=0.95)
    assert got_hi == hi
    if hi is not None:  # the definition, checked by brute force
        assert _brute_cdf(hi - 1, n, 0.95) >= 0.95 > _brute_cdf(hi - 2, n, 0.95)
    if got_lo is not None:
        assert 1 - _brute_cdf(got_lo - 1, n, 0.95) >= 0.95
        assert 1 - _brute_cdf(got_lo, n, 0.95) < 0.95
    assert got_lo == lo


def test_quantile_upper_bound_covers_the_true_p95() -> None:
    """Over many samples the upper bound is below the true P95 in at most about 5 %."""
    true_p95 = math.exp(math.log(800) + 1.6448536 * 0.6)
    rng = np.random.default_rng(11)
    misses = 0
    runs = 400
    for _ in range(runs):
        sample = rng.lognormal(math.log(800), 0.6, size=300)
        lo, hi = stats.quantile_bounds(sample, 0.95, confidence=0.95)
        misses += hi < true_p95
        assert lo <= hi
    assert misses / runs <= 0.07


def test_wilson_lower_bound_coverage() -> None:
    rng = np.random.default_rng(5)
    p, n, runs = 0.98, 1500, 2000
    ks = rng.binomial(n, p, size=runs)
    misses = sum(stats.wilson_bounds(int(k), n)[0] > p for k in ks)
    assert misses / runs <= 0.07


def test_bootstrap_is_seeded_and_grouping_changes_nothing() -> None:
    rng = np.random.default_rng(3)
    scores = rng.choice([1, 2, 3, 4, 5], p=[0.05, 0.05, 0.1, 0.4, 0.4], size=400)
    a = stats.bootstrap_mean_bounds(scores.tolist(), seed=7)
    b = stats.bootstrap_mean_bounds(scores.tolist(), seed=7)
    values, counts = np.unique(scores, return_counts=True)
    c = stats.bootstrap_mean_bounds(values.tolist(), counts.tolist(), seed=7)
    assert a == b
    assert a == pytest.approx(c, abs=1e-12)  # raw values are grouped before resampling
    lo, hi = a
    assert lo < scores.mean() < hi
    se = scores.std(ddof=1) / math.sqrt(len(scores))
    assert scores.mean() - lo == pytest.approx(1.645 * se, rel=0.15)


def test_bootstrap_many_distinct_values_uses_chunks() -> None:
    rng = np.random.default_rng(4)
    sims = rng.beta(12, 8, size=5000)  # 5,000 distinct values
    lo, hi = stats.bootstrap_mean_bounds(sims.tolist(), resamples=300, seed=1)
    se = sims.std(ddof=1) / math.sqrt(len(sims))
    assert lo == pytest.approx(sims.mean() - 1.645 * se, abs=se * 0.5)
    assert hi == pytest.approx(sims.mean() + 1.645 * se, abs=se * 0.5)


@pytest.mark.parametrize(
    ("values", "counts", "expect"),
    [([], None, None), ([1.0, 2.0], [0, 0], None), ([4.0], [10], (4.0, 4.0))],
)
def test_bootstrap_edges(values: list, counts: list | None, expect: tuple | None) -> None:
    assert stats.bootstrap_mean_bounds(values, counts) == expect


def test_bootstrap_rejects_mismatched_counts() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        stats.bootstrap_mean_bounds([1.0, 2.0], [1])


@pytest.mark.parametrize(
    ("mean", "sd", "thr", "expect"),
    [(4.2, 1.0, 4.0, 68), (4.0, 1.0, 4.0, None), (3.5, 1.0, 4.0, None), (4.5, 0.0, 4.0, 1)],
)
def test_mean_n_needed(mean: float, sd: float, thr: float, expect: int | None) -> None:
    assert stats.mean_n_needed(mean, sd, thr) == expect


def test_quantile_n_needed() -> None:
    rng = np.random.default_rng(2)
    fast = rng.lognormal(math.log(700), 0.4, size=200)  # P95 about 1,350 ms
    need = stats.quantile_n_needed(fast, 1500)
    assert need is not None and 59 <= need < 5000
    slow = rng.lognormal(math.log(1400), 0.4, size=200)
    assert stats.quantile_n_needed(slow, 1500) is None
    assert stats.quantile_n_needed([], 1500) is None


@pytest.mark.parametrize("confidence", [0.4, 1.0, 1.5])
def test_confidence_out_of_range(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        stats.z_value(confidence)


def test_bootstrap_lower_bound_coverage_on_skewed_scores() -> None:
    """Scores piled up at 4 and 5 (true mean exactly 4.0), 150 reviews: the lower bound clears
    4.0 in about 5 % of samples (BCa; the bounded scale costs about one point above nominal)."""
    probs = np.array([0.02, 0.05, 0.14, 0.49, 0.30])
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    rng = np.random.default_rng(8)
    runs = 600
    wrong = 0
    for i in range(runs):
        counts = rng.multinomial(150, probs).tolist()
        lo, hi = stats.bootstrap_mean_bounds(values, counts, seed=i, resamples=1000)
        wrong += lo >= 4.0
        assert lo <= hi
    assert wrong / runs <= 0.08

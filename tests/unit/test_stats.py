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


# --- anytime-valid bounds: coverage under repeated looks ---------------------------------
# Each test draws many sequences at a true value exactly on the threshold, computes the bound
# at every look of a growing sample, and counts the sequences in which the bound EVER crosses
# the truth (what a team acting on the first GO would see). Small sizes; no timing.

AT_4 = np.array((0.02, 0.05, 0.14, 0.49, 0.30))  # mean exactly 4.0
SCALE = np.arange(1, 6, dtype=float)


def test_fixed_sample_wilson_fails_under_daily_looks_and_the_betting_cs_holds() -> None:
    rng = np.random.default_rng(3)
    seeds, looks = 200, range(150, 3001, 150)  # 20 looks, 150 requests a day
    draws = rng.random((seeds, 3000)) < 0.98
    wilson_hit = cs_hit = 0
    for row in draws:
        ks = np.cumsum(row)
        wilson_hit += any(stats.wilson_bounds(int(ks[n - 1]), n)[0] >= 0.98 for n in looks)
        cs_hit += any(stats.betting_rate_bounds(int(ks[n - 1]), n)[0] >= 0.98 for n in looks)
    assert wilson_hit / seeds > 0.10  # the old bound: 1 look at 95 %, 20 looks far worse
    assert cs_hit / seeds <= 0.05


def test_betting_mean_cs_covers_at_every_look() -> None:
    rng = np.random.default_rng(4)
    seeds, hits_low, hits_high = 100, 0, 0
    for _ in range(seeds):
        x = rng.choice(SCALE, size=160, p=AT_4)
        low = high = False
        for n in range(10, 161, 15):
            counts = np.bincount(x[:n].astype(int), minlength=6)[1:]
            lo, hi = stats.betting_mean_bounds(SCALE, counts, lo=1, hi=5)
            low, high = low or lo > 4.0, high or hi < 4.0
        hits_low += low
        hits_high += high
    assert hits_low / seeds <= 0.05 and hits_high / seeds <= 0.05


def test_betting_bounds_are_exact_limits_of_the_data() -> None:
    assert stats.betting_mean_bounds([], lo=0, hi=1) is None
    lo, hi = stats.betting_mean_bounds([0.7] * 5000, lo=0, hi=1)
    assert 0.65 < lo < 0.7 < hi < 0.75
    lo, hi = stats.betting_rate_bounds(2000, 2000)
    assert hi == pytest.approx(1.0) and 0.99 < lo < 1.0
    assert stats.betting_rate_bounds(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        stats.betting_rate_bounds(3, 2)
    # Grouped and ungrouped data give the same bound (the capital depends on counts only).
    assert stats.betting_mean_bounds([4, 5, 5], lo=1, hi=5) == pytest.approx(
        stats.betting_mean_bounds([4, 5], [1, 2], lo=1, hi=5)
    )


def test_quantile_cs_covers_at_every_look() -> None:
    rng = np.random.default_rng(5)
    median = 1500 / math.exp(1.6448536 * 0.5)  # true P95 exactly 1,500
    seeds, false_pass, false_fail = 200, 0, 0
    for _ in range(seeds):
        x = rng.lognormal(math.log(median), 0.5, size=1500)
        passed = failed = False
        for n in range(100, 1501, 100):
            lo, hi = stats.quantile_cs_bounds(x[:n], 0.95)
            passed = passed or (hi is not None and hi < 1500)
            failed = failed or (lo is not None and lo > 1500)
        false_pass += passed
        false_fail += failed
    assert false_pass / seeds <= 0.05 and false_fail / seeds <= 0.05
    assert stats.quantile_cs_ranks(10, 0.95)[1] is None  # too few for an upper bound
    lo, hi = stats.quantile_cs_ranks(5000, 0.95)
    assert lo < 0.95 * 5000 < hi <= 5000


def _ppi_crossings(judge: str, seeds: int = 300) -> tuple[float, float]:
    """(share of sequences whose lower bound ever exceeds the true mean 4.0, mean width at
    the last look) for human reviews (8 a day) plus judge scores of 150 pairs a day."""
    rng = np.random.default_rng({"none": 6, "random": 7, "good": 8}[judge])
    hits, widths = 0, []
    for _ in range(seeds):
        y = rng.choice(SCALE, size=240, p=AT_4)
        u_true = rng.choice(SCALE, size=4500, p=AT_4)
        if judge == "random":
            f, u = rng.integers(1, 6, size=240), rng.integers(1, 6, size=4500)
        else:
            f = np.clip(np.rint(y + rng.normal(0, 0.6, 240)), 1, 5)
            u = np.clip(np.rint(u_true + rng.normal(0, 0.6, 4500)), 1, 5)
        hit = False
        for day in range(2, 31):
            n, big_n = 8 * day, 150 * day
            if judge == "none":
                got = stats.ppi_mean(y[:n], np.zeros(n), [], lo=1, hi=5)
            else:
                got = stats.ppi_mean(y[:n], f[:n], u[:big_n], lo=1, hi=5)
            hit = hit or got.lower > 4.0
        hits += hit
        widths.append(got.estimate - got.lower)
    return hits / seeds, float(np.mean(widths))


def test_prediction_powered_bound_stays_valid_and_a_good_judge_narrows_it() -> None:
    # The review-score bound is asymptotic (time-uniform CLT): at these small sizes it is
    # close to nominal, so the check allows Monte Carlo error (300 seeds: +-1.3 points).
    none, width_none = _ppi_crossings("none")
    rand, width_rand = _ppi_crossings("random")
    good, width_good = _ppi_crossings("good")
    assert none <= 0.075 and rand <= 0.075 and good <= 0.075
    assert width_good < 0.75 * width_none  # a judge that tracks people narrows the bound
    assert width_rand < 1.25 * width_none  # a useless one gets ~no weight


def test_ppi_weights_a_useless_judge_near_zero() -> None:
    rng = np.random.default_rng(9)
    y = rng.choice(SCALE, size=400, p=AT_4)
    got = stats.ppi_mean(y, rng.integers(1, 6, 400), rng.integers(1, 6, 4000), lo=1, hi=5)
    assert got.power < 0.15
    good = stats.ppi_mean(y, y, rng.choice(SCALE, size=4000, p=AT_4), lo=1, hi=5)
    assert good.power > 0.85 and good.upper - good.lower < got.upper - got.lower
    assert stats.ppi_mean([5.0], [5.0], [], lo=1, hi=5) is None  # one review: no variance


def test_a_useless_judge_rarely_gets_any_weight_or_costs_reviews() -> None:
    """Issue 13: with the raw PPI++ power a random judge got a weight above 0 in about half
    the runs (the estimate of the weight is noise) and then a lower bound below the human
    one in ~24 % of runs: extra reviews for nothing. The power is shrunk by its own standard
    error, so a judge whose slope is within noise of 0 gets weight 0."""
    rng = np.random.default_rng(11)
    seeds, weighted, worse = 300, 0, 0
    for _ in range(seeds):
        y = rng.choice(SCALE, size=40, p=AT_4).astype(float)
        f, u = rng.integers(1, 6, size=40), rng.integers(1, 6, size=1000)
        judged = stats.ppi_mean(y, f, u, lo=1, hi=5)
        alone = stats.ppi_mean(y, np.zeros(40), [], lo=1, hi=5)
        weighted += judged.power > 0
        worse += judged.lower < alone.lower - 1e-9
    assert weighted / seeds <= 0.25  # raw PPI++: 49 %
    assert worse / seeds <= 0.10  # raw PPI++: 24 %


def test_a_judge_that_tracks_people_keeps_its_weight() -> None:
    rng = np.random.default_rng(12)
    y = rng.choice(SCALE, size=40, p=AT_4).astype(float)
    f = np.clip(np.rint(y + rng.normal(0, 0.5, 40)), 1, 5)
    u = np.clip(np.rint(rng.choice(SCALE, size=2000, p=AT_4) + rng.normal(0, 0.5, 2000)), 1, 5)
    got = stats.ppi_mean(y, f, u, lo=1, hi=5)
    alone = stats.ppi_mean(y, np.zeros(40), [], lo=1, hi=5)
    assert got.power > 0.6
    assert got.upper - got.lower < 0.75 * (alone.upper - alone.lower)


def _weighted_crossings(judge: str, seeds: int = 200) -> float:
    """Share of sequences whose weighted PPI lower bound ever exceeds the true mean 4.0 when
    each day's 8 reviewed pairs (of 150) are drawn by the review queue's judge_unsure
    strategy: pairs whose two judge orders disagree are picked more often."""
    from shadowtutor.review import sampling

    rng = np.random.default_rng({"good": 21, "random": 22}[judge])
    hits = 0
    for _ in range(seeds):
        ys, fs, ds, us, hit = [], [], [], [], False
        for day in range(30):
            y = rng.choice(SCALE, size=150, p=AT_4).astype(float)
            if judge == "random":
                a, b = rng.integers(1, 6, 150), rng.integers(1, 6, 150)
            else:
                a = np.clip(np.rint(y + rng.normal(0, 0.8, 150)), 1, 5)
                b = np.clip(np.rint(y + rng.normal(0, 0.8, 150)), 1, 5)
            f = (a + b) / 2
            rows = [{"id": f"{i:03d}", "judge_student": f[i], "judge_spread": abs(a[i] - b[i])}
                    for i in range(150)]  # fmt: skip
            ids = sampling.select_ids(
                rows, strategy="judge_unsure", size=8, seed=int(rng.integers(1e9))
            )
            weights = sampling.design_weights(rows, 8)
            chosen = np.zeros(150, dtype=bool)
            chosen[[int(i) for i in ids]] = True
            ys += list(y[chosen])
            fs += list(f[chosen])
            ds += [weights[i] for i in ids]
            us += list(f[~chosen])
            if day >= 1:
                got = stats.ppi_mean(ys, fs, us, human_weights=ds, lo=1, hi=5)
                hit = hit or got.lower > 4.0
        hits += hit
    return hits / seeds


def test_inverse_probability_weighted_ppi_stays_valid_under_active_sampling() -> None:
    """Issue 13: the review queue may favour pairs the judge is unsure of; with the design
    weights the bound still holds at every daily look (nominal 5 %, asymptotic: allow MC
    error), for a judge that tracks people and for a useless one."""
    assert _weighted_crossings("good") <= 0.075
    assert _weighted_crossings("random") <= 0.075


def test_weighted_ppi_with_equal_weights_matches_the_plain_human_mean() -> None:
    rng = np.random.default_rng(23)
    y = rng.choice(SCALE, size=50, p=AT_4).astype(float)
    plain = stats.ppi_mean(y, np.zeros(50), [], lo=1, hi=5)
    weighted = stats.ppi_mean(y, np.zeros(50), [], human_weights=np.ones(50), lo=1, hi=5)
    assert (weighted.estimate, weighted.lower) == pytest.approx((plain.estimate, plain.lower))
    with pytest.raises(ValueError, match="design weight"):
        stats.ppi_mean(y, np.zeros(50), [], human_weights=np.zeros(50), lo=1, hi=5)


def test_quantile_cs_ranks_by_bisection_equal_the_scan_of_every_count() -> None:
    """The anytime quantile ranks are found by bisection (a year of 600 pairs a day is 219,000
    counts, looked at daily); they equal the scan of every count's capital."""

    def scan(n: int, q: float, conf: float) -> tuple[int | None, int | None]:
        target = math.log(1 / (1 - conf))
        up = np.nonzero(stats._rank_capital(n, q, "up") >= target)[0]
        down = np.nonzero(stats._rank_capital(n, q, "down") >= target)[0]
        return (
            int(down[-1]) + 1 if len(down) else None,
            int(up[0]) if len(up) and 1 <= up[0] <= n else None,
        )

    for n in [*range(1, 120, 7), 500, 4_000, 50_000]:
        for q in (0.5, 0.95, 0.99):
            for conf in (0.95, 0.9996):
                assert stats.quantile_cs_ranks(n, q, confidence=conf) == scan(n, q, conf)

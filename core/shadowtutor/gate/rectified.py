"""Exact, anytime-valid bounds of a mean of human ratings, alone or helped by a judge.

The review score (1..5) and the teacher gap (-4..4) are bounded means: the betting confidence
sequence of :func:`shadowtutor.gate.stats.betting_mean_bounds` covers them at every sample
size, from the first review, whatever the distribution (skewed, bimodal, all top scores).
The large-sample (Gaussian-mixture) bound used before crossed 11.5 % of the time over 45
daily looks when scores were mostly 4s with 1 in 15 a 1 (issue 26).

With a judge, the mean is ``lambda * judge mean + mean(human - lambda * judge)``
(prediction-powered): for each candidate mean one test martingale, a weighted average of bets
on the human ratings alone and on the rectified terms ``y - lambda * f`` (their known range),
the candidate shifted by lambda times the judge mean's own betting bound. ``lambda`` is never
fitted to the data (a fitted weight is not predictable, so the bet would not be a
martingale): it comes from a fixed grid. The human bets keep ``HUMAN_SHARE`` of the weight, so
a useless judge costs little, and a judge that tracks people narrows the bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from shadowtutor.gate import stats

JUDGE_WEIGHTS = (0.5, 1.0)  # the lambdas bet on, besides 0 (the human ratings alone)
HUMAN_SHARE = 0.75  # of the mixture's weight, for the bets on the human ratings alone
JUDGE_MEAN = 0.1  # of the error, for the bounds of the judge's mean over unreviewed pairs


@dataclass(frozen=True)
class MeanBound:
    """An anytime-valid bound pair of a mean of ratings and how it was reached."""

    estimate: float
    lower: float
    upper: float
    n_human: int
    n_judge: int
    power: float  # the judge's weight behind the bound (0: the human reviews alone)


# The largest design weight a review can carry: the judge_unsure queue spreads half its
# sampling weight evenly (shadowtutor.review.sampling.UNIFORM_SHARE), so no pair is picked at
# under half the uniform rate and no weight exceeds 2. The bets are scaled by weight / this
# (a larger observed weight raises it: the bets must stay safe for every weight seen).
DESIGN_WEIGHT_MAX = 2.0


def _design(weights: ArrayLike | None, cap: float) -> np.ndarray | None:
    """Design weights over their cap, for :func:`shadowtutor.gate.stats.log_capital`."""
    return None if weights is None else np.asarray(weights, dtype=float) / cap


def weight_cap(*weights: ArrayLike | None) -> float:
    """The cap the design weights are scaled by: :data:`DESIGN_WEIGHT_MAX` or the largest
    weight given, whichever is larger."""
    seen = [float(np.max(w)) for w in weights if w is not None and np.size(w)]
    return max([DESIGN_WEIGHT_MAX, *seen])


def human_bound(
    values: ArrayLike,
    counts: ArrayLike,
    *,
    lo: float,
    hi: float,
    confidence: float,
    weights: ArrayLike | None = None,
) -> MeanBound | None:
    """The betting confidence sequence of the human ratings' mean; None without ratings.

    ``weights``: design weights (``rate / inclusion probability``) of reviews picked with
    unequal probabilities (the judge_unsure queue): the population mean is the mean of
    ``weight * rating``, and each bet is on ``weight * (rating - m)`` (exact, anytime)."""
    vals = np.asarray(values, dtype=float)
    cnts = np.asarray(counts, dtype=float)
    n = float(cnts.sum())
    if n <= 0:
        return None
    if weights is None:
        got = stats.betting_mean_bounds(vals, cnts, lo=lo, hi=hi, confidence=confidence)
        assert got is not None  # n > 0
        return MeanBound(float(vals @ cnts / n), got[0], got[1], round(n), 0, 0.0)
    d = np.asarray(weights, dtype=float)
    design = _design(d, weight_cap(d))
    alpha = 1 - confidence
    vals = np.clip(vals, lo, hi)
    lower = _mixed_lower([(vals, cnts, lo, 0.0, design)], [1.0], lo, hi, alpha)
    upper = -_mixed_lower([(-vals, cnts, -hi, 0.0, design)], [1.0], -hi, -lo, alpha)
    estimate = float((d * vals) @ cnts / float(d @ cnts))  # the weighted (Hajek) mean
    return MeanBound(estimate, max(lo, lower), min(hi, upper), round(n), 0, 0.0)


JudgeParts = tuple[np.ndarray, np.ndarray, float]  # (terms, counts, lowest possible term)


Part = tuple[np.ndarray, np.ndarray, float, float, np.ndarray | None]


def _mixed_lower(
    parts: Sequence[Part], weights: Sequence[float], lo: float, hi: float, alpha: float
) -> float:
    """The smallest t not rejected by the weighted average of the parts' betting martingales,
    part ``(x, counts, x_lo, shift, design)`` betting against "mean of x <= t - shift" (with
    ``design``: the population mean of ``design weight * x``, the bets scaled by it)."""
    target = math.log(1 / alpha)
    logw = np.log(np.asarray(weights, dtype=float))

    def rejected(grid: np.ndarray) -> np.ndarray:
        logs = np.stack(
            [
                stats.log_capital(x, c, grid - shift, x_lo, design=design) + lw
                for (x, c, x_lo, shift, design), lw in zip(parts, logw, strict=True)
            ]
        )
        top = logs.max(axis=0)
        mixed: np.ndarray = top + np.log(np.exp(logs - top).sum(axis=0)) >= target
        return mixed

    # Each part's capital falls as t rises, so the rejected t form an interval [lo, L).
    left, right = lo, hi
    for _ in range(5):
        grid = np.linspace(left, right, 17)[1:]
        k = int(np.count_nonzero(rejected(grid)))
        left, right = (grid[k - 1] if k else left), (grid[k] if k < len(grid) else right)
    return float(left)


def judged_bound(
    human: Sequence[float],
    human_counts: ArrayLike,
    paired: tuple[Sequence[float], Sequence[float], ArrayLike],
    judge_only: tuple[Sequence[float], ArrayLike],
    *,
    lo: float,
    hi: float,
    confidence: float,
    human_weights: ArrayLike | None = None,
    paired_weights: ArrayLike | None = None,
) -> MeanBound | None:
    """The prediction-powered betting bound: one test martingale per candidate mean, the
    weighted average of bets on the human ratings alone (lambda 0) and on the rectified terms
    ``y - lambda * f`` (each ``JUDGE_WEIGHTS`` lambda), against the candidate shifted by
    lambda times the judge's mean bound. A judge that tracks people makes the rectified terms
    nearly constant, so their bets grow fast; a useless judge's bets go nowhere and the human
    bets carry the bound (at a little more than half the error).

    ``paired`` is (human, judge, counts) of the pairs both scored, ``judge_only`` (judge,
    counts) of the pairs only the judge scored. The reviewed pairs are a uniform sample of the
    judged ones, or (with ``human_weights`` and ``paired_weights``, the design weights of the
    reviews in ``human`` and ``paired``) a sample with known unequal probabilities (the
    judge_unsure queue): then every bet is on ``weight * (term - candidate)``, whose mean
    under the queue's sampling is the population's (exact and anytime, as without weights),
    and ``judge_only`` must hold every judged pair, reviewed or not (the judge's mean over
    the whole population)."""
    alpha = 1 - confidence
    y_all = np.asarray(human, dtype=float)
    w_all = np.asarray(human_counts, dtype=float)
    if w_all.sum() <= 0:
        return None
    y = np.asarray(paired[0], dtype=float)
    f = np.asarray(paired[1], dtype=float)
    w = np.asarray(paired[2], dtype=float)
    u = np.asarray(judge_only[0], dtype=float)
    wu = np.asarray(judge_only[1], dtype=float)
    n_human, mean_all = round(float(w_all.sum())), float(y_all @ w_all / w_all.sum())
    cap = weight_cap(human_weights, paired_weights)
    d_all = _design(human_weights, cap)
    d_pair = _design(paired_weights, cap)
    if human_weights is not None:
        hw = np.asarray(human_weights, dtype=float)
        mean_all = float((hw * y_all) @ w_all / float(hw @ w_all))
    if w.sum() <= 0 or wu.sum() <= 0:
        share = HUMAN_SHARE * (1 - JUDGE_MEAN) * alpha  # what the human bets get with a judge
        return human_bound(y_all, w_all, lo=lo, hi=hi, confidence=1 - share, weights=human_weights)
    mu_bounds = stats.betting_mean_bounds(u, wu, lo=lo, hi=hi, confidence=1 - JUDGE_MEAN * alpha)
    assert mu_bounds is not None
    mu_lo, mu_hi = mu_bounds
    rest = (1 - JUDGE_MEAN) * alpha
    weights = [HUMAN_SHARE] + [(1 - HUMAN_SHARE) / len(JUDGE_WEIGHTS)] * len(JUDGE_WEIGHTS)
    lower_parts: list[Part] = [(y_all, w_all, lo, 0.0, d_all)] + [
        (y - lam * f, w, lo - lam * hi, lam * mu_lo, d_pair) for lam in JUDGE_WEIGHTS
    ]
    upper_parts: list[Part] = [(-y_all, w_all, -hi, 0.0, d_all)] + [
        (lam * f - y, w, lam * lo - hi, -lam * mu_hi, d_pair) for lam in JUDGE_WEIGHTS
    ]
    lower = _mixed_lower(lower_parts, weights, lo, hi, rest)
    upper = -_mixed_lower(upper_parts, weights, -hi, -lo, rest)
    # The weight shown: the lambda whose rectified mean is tightest around the human mean.
    spreads = [
        float(w @ (y - lam * f - (y - lam * f) @ w / w.sum()) ** 2) for lam in (0.0, *JUDGE_WEIGHTS)
    ]
    power = (0.0, *JUDGE_WEIGHTS)[int(np.argmin(spreads))]
    mu = float(u @ wu / wu.sum())
    pw = np.ones(len(y)) if paired_weights is None else np.asarray(paired_weights, dtype=float)
    rect = float((pw * (y - power * f)) @ w / float(pw @ w))  # weighted (Hajek) when weighted
    estimate = mean_all if power == 0 else rect + power * mu
    return MeanBound(
        estimate, max(lo, lower), min(hi, upper), n_human, round(float(wu.sum())), power
    )

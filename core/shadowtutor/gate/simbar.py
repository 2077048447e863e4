"""Is similarity worth a criterion, and where is its bar? Calibrated per category from the
reviewed pairs that have both a similarity and a review score.

Similarity to the teacher is only evidence of quality where it predicts what people say. On
MT-Bench the shipped bar 0.45 was cleared by 25 of 30 models, one scoring 2.75/10 (issue 26).
So, per category and similarity method:

- **how well it predicts**: the pair-level Spearman and Kendall correlation between similarity
  and the review score, each with a 95 % interval (Fisher z: Bonett & Wright's variance for
  Spearman, Fieller's for Kendall), over every reviewed pair of the evidence;
- **where it predicts nothing** (fewer than ``min_pairs`` pairs, or the Spearman interval
  reaches 0), the similarity criterion is **left out** for the category and the reviews
  decide;
- **its bar**: the lowest similarity ``s`` (in steps of 0.05 from 0.95 down) such that the
  reviewed pairs with similarity >= ``s`` meet the review bar: the exact anytime lower bound of
  their mean score (:func:`shadowtutor.gate.rectified.human_bound`) is at least the bar.
  The candidates are tested in a fixed order from the top, each at the category's full share of
  the error, stopping at the first that fails (a fixed-sequence procedure: the chance that any
  accepted ``s`` is one whose pairs do not meet the bar stays within that share). Without such
  an ``s``, the criteria file's bar stays.

Leaving the criterion out never makes a GO easier to get wrong: a GO needs every criterion of
the category to pass, and the review score's own bound carries the error budget for the claim
"people rate it at the bar".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from shadowtutor.gate import rectified

STEP = 0.05  # the candidate bars: 0.95, 0.90, ..., 0.05
Z95 = NormalDist().inv_cdf(0.975)  # the correlations' two-sided 95 % intervals


@dataclass(frozen=True)
class SimilarityBar:
    """The calibration of one category's similarity (one method) against its reviews."""

    method: str
    pairs: int  # reviewed pairs with both a similarity and a score
    spearman: float | None
    spearman_ci: tuple[float, float] | None
    kendall: float | None
    kendall_ci: tuple[float, float] | None
    used: bool  # False: the criterion is left out and the reviews decide
    bar: float | None  # the calibrated bar (None: not found; the criteria file's stays)
    bar_pairs: int = 0  # reviewed pairs at or above the bar
    bar_bound: float | None = None  # the lower bound of their mean score

    def words(self, target: float) -> str:
        """How similarity relates to the reviews here, in one line."""
        if self.spearman is None or self.spearman_ci is None:
            corr = "no correlation yet"
        else:
            lo, hi = self.spearman_ci
            corr = f"Spearman {self.spearman:.2f} [95 % {lo:.2f}, {hi:.2f}]"
            if self.kendall is not None and self.kendall_ci is not None:
                klo, khi = self.kendall_ci
                corr += f", Kendall {self.kendall:.2f} [{klo:.2f}, {khi:.2f}]"
        head = f"{self.method} similarity vs review score on {self.pairs:,} reviewed pairs: {corr}"
        if not self.used:
            return head
        if self.bar is None:
            return (
                head
                + f"; no similarity yet above which reviewed pairs confidently average {target:g}"
            )
        return (
            head + f"; the {self.bar_pairs:,} reviewed pairs with similarity >= {self.bar:.2f} "
            f"average at least {self.bar_bound:.2f} (anytime bound) >= {target:g}"
        )


def _midranks(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The average rank of each distinct value of grouped data (ties share their ranks)."""
    order = np.argsort(values, kind="stable")
    uniq, inverse = np.unique(values[order], return_inverse=True)
    per = np.bincount(inverse, weights=counts[order], minlength=len(uniq))
    before = np.concatenate(([0.0], np.cumsum(per)[:-1]))
    ranks_of_uniq = before + (per + 1) / 2
    out = np.empty(len(values))
    out[order] = ranks_of_uniq[inverse]
    return out


def spearman(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float | None:
    """Spearman's rank correlation of grouped pairs (``w[i]`` copies of ``(x[i], y[i])``)."""
    rx, ry = _midranks(x, w), _midranks(y, w)
    n = float(w.sum())
    mx, my = float(w @ rx / n), float(w @ ry / n)
    sxy = float(w @ ((rx - mx) * (ry - my)))
    sxx, syy = float(w @ (rx - mx) ** 2), float(w @ (ry - my) ** 2)
    return None if sxx <= 0 or syy <= 0 else sxy / math.sqrt(sxx * syy)


def kendall(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float | None:
    """Kendall's tau-b of grouped pairs."""
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    ww = w[:, None] * w[None, :]
    concord = float((ww * dx * dy).sum()) / 2
    n0 = float(w.sum()) * (float(w.sum()) - 1) / 2

    def tied(v: np.ndarray) -> float:
        _, inv = np.unique(v, return_inverse=True)
        per = np.bincount(inv, weights=w)
        return float((per * (per - 1)).sum()) / 2

    denom = math.sqrt((n0 - tied(x)) * (n0 - tied(y)))
    return None if denom <= 0 else concord / denom


def _interval(r: float, n: float, variance: float) -> tuple[float, float]:
    """A 95 % interval of a correlation by Fisher's z with the given variance of z."""
    z = math.atanh(max(-0.999999, min(0.999999, r)))
    half = Z95 * math.sqrt(variance)
    return math.tanh(z - half), math.tanh(z + half)


def calibrate(
    cells: Mapping[tuple[float, float], float],
    *,
    method: str,
    target: float,
    confidence: float,
    min_pairs: int = 30,
    min_reviews: int = 10,
) -> SimilarityBar:
    """The calibration from ``cells``: ``(similarity, review score) -> count`` of the
    category's reviewed pairs (the similarity of ``method``)."""
    keys = list(cells)
    x = np.asarray([k[0] for k in keys], dtype=float)
    y = np.asarray([k[1] for k in keys], dtype=float)
    w = np.asarray([cells[k] for k in keys], dtype=float)
    n = int(w.sum()) if len(w) else 0
    if n < 4:
        return SimilarityBar(method, n, None, None, None, None, False, None)
    rho, tau = spearman(x, y, w), kendall(x, y, w)
    rho_ci = None if rho is None else _interval(rho, n, (1 + rho * rho / 2) / (n - 3))
    tau_ci = None if tau is None or n < 5 else _interval(tau, n, 0.437 / (n - 4))
    used = n >= min_pairs and rho_ci is not None and rho_ci[0] > 0
    bar = bound = None
    above = 0
    if used:
        for s in np.round(np.arange(1 - STEP, 0, -STEP), 2):
            keep = x >= s - 1e-9
            k = float(w[keep].sum())
            if k < min_reviews:
                continue  # too few pairs this high up to test yet: look lower
            got = rectified.human_bound(y[keep], w[keep], lo=1.0, hi=5.0, confidence=confidence)
            if got is None or got.lower < target:
                break  # the fixed sequence stops at its first failure
            bar, bound, above = float(s), got.lower, int(k)
    return SimilarityBar(method, n, rho, rho_ci, tau, tau_ci, used, bar, above, bound)

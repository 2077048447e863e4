"""The routing threshold with a guarantee: Learn-then-Test by fixed-sequence testing, pure.

Per category, on held-out human-labelled pairs (never the ones the router learned from):
the thresholds of a grid fixed in advance (from the training pairs' scores, so it does not
look at the held-out labels) are tested from high to low. For threshold ``t`` the student
would serve the requests scoring ``>= t``; the null hypothesis is "the acceptable rate of
those requests is below the floor". Its p-value is the exact binomial tail
``P(Binomial(n_t, floor) >= k_t)`` of the ``k_t`` acceptable pairs among the ``n_t`` held-out
pairs at or above ``t``. Testing in a fixed order and stopping at the first p-value above
``alpha`` controls the family-wise error at ``alpha`` without any split (Bauer 1991; Angelopoulos
et al., "Learn then Test", 2021): with probability ``1 - alpha`` every threshold it accepts,
the chosen (lowest) one included, has a true acceptable rate at or above the floor.

The binomial test rejects exactly when the floor is at or below the Clopper-Pearson lower
bound at level ``alpha``, so the whole frontier comes from one pass: the guaranteed floor of
the ``j``-th threshold is the smallest lower bound among the first ``j`` (a floor the sequence
reaches), and a floor ``f`` gets the lowest threshold whose guaranteed floor is ``>= f``.
Category gating, the baseline, is the same test with one threshold: serve the whole category
or nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy.stats import beta

START_SHARE = 0.2  # the grid starts where the student would take 20 % of the training pairs
STEP = 0.05  # then 25 %, 30 %, ... 100 % (serve everything)


def lower_bound(k: int, n: int, alpha: float) -> float:
    """Clopper-Pearson one-sided lower bound of a rate at level ``alpha`` (0 with no pairs)."""
    if n <= 0 or k <= 0:
        return 0.0
    return float(beta.ppf(alpha, k, n - k + 1))


def p_value(k: int, n: int, floor: float) -> float:
    """``P(Binomial(n, floor) >= k)``: small when ``k`` acceptable of ``n`` is unlikely under
    a rate at the floor (1 with no pairs)."""
    if n <= 0 or k <= 0:
        return 1.0
    return float(beta.cdf(floor, k, n - k + 1))


def fewest(floor: float, alpha: float) -> int:
    """The fewest pairs, all acceptable, that certify ``floor`` at ``alpha``."""
    return max(1, math.ceil(math.log(alpha) / math.log(floor)))


def start_share(held_out: int, floor: float, alpha: float) -> float:
    """Where the sequence starts: at least ``START_SHARE``, and at least twice the share of
    the held-out pairs that could certify the floor at all (a threshold above it could
    only fail, and the first failure ends the sequence). Uses the held-out pairs' number,
    never their labels."""
    if held_out <= 0:
        return 1.0
    return min(1.0, max(START_SHARE, 2 * fewest(floor, alpha) / held_out))


def grid(train_scores: Sequence[float], start: float = START_SHARE) -> list[float]:
    """Thresholds from high to low: the training scores' quantiles at which the student would
    serve ``start``, ``start + STEP``, ... of them; the last is 0 (serve all)."""
    ordered = sorted(train_scores, reverse=True)
    out: list[float] = []
    if ordered:
        steps = max(0, math.ceil((1 - start) / STEP - 1e-9))
        for i in range(steps):
            share = start + i * STEP
            t = ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]
            if not out or t < out[-1]:
                out.append(float(t))
    out.append(0.0)
    return out


@dataclass(frozen=True)
class Point:
    threshold: float
    n: int  # held-out pairs at or above the threshold
    acceptable: int
    share: float  # of the held-out pairs (the category's traffic the student would take)
    bound: float  # Clopper-Pearson lower bound of their acceptable rate at alpha
    guaranteed: float  # the floor the fixed sequence reaches here (running minimum)


@dataclass(frozen=True)
class Choice:
    """One category's threshold: the chosen point (None: no threshold reaches the floor)."""

    category: str
    floor: float
    alpha: float
    held_out: int
    points: list[Point] = field(default_factory=list)
    chosen: Point | None = None

    @property
    def threshold(self) -> float | None:
        return None if self.chosen is None else self.chosen.threshold

    @property
    def share(self) -> float:
        return 0.0 if self.chosen is None else self.chosen.share

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "floor": self.floor,
            "alpha": self.alpha,
            "held_out": self.held_out,
            "threshold": self.threshold,
            "share": self.share,
            "points": [asdict(p) for p in self.points],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Choice:
        points = [Point(**p) for p in d.get("points", [])]
        chosen = next((p for p in points if p.threshold == d.get("threshold")), None)
        return cls(d["category"], d["floor"], d["alpha"], d["held_out"], points, chosen)


def frontier(
    scores: Sequence[float], labels: Sequence[bool], thresholds: Sequence[float], alpha: float
) -> list[Point]:
    """The fixed sequence over ``thresholds`` (high to low) on held-out pairs."""
    total = len(scores)
    pairs = sorted(zip(scores, labels, strict=True), reverse=True)
    points: list[Point] = []
    running = 1.0
    for t in thresholds:
        served = [y for s, y in pairs if s >= t]
        n, k = len(served), sum(served)
        bound = lower_bound(k, n, alpha)
        running = min(running, bound)
        points.append(Point(t, n, k, n / total if total else 0.0, bound, running))
    return points


def choose(
    category: str,
    scores: Sequence[float],
    labels: Sequence[bool],
    thresholds: Sequence[float],
    *,
    floor: float,
    alpha: float,
) -> Choice:
    """The lowest threshold of the sequence whose acceptable rate is certified ``>= floor``
    (every threshold before it certified too), or no threshold."""
    points = frontier(scores, labels, thresholds, alpha)
    chosen = None
    for p in points:
        if p.guaranteed < floor:
            break
        chosen = p
    return Choice(category, floor, alpha, len(scores), points, chosen)


def category_gate(labels: Sequence[bool], *, floor: float, alpha: float) -> bool:
    """Category gating at the same floor: the whole category's acceptable rate certified."""
    return lower_bound(sum(labels), len(labels), alpha) >= floor

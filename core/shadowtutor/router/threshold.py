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


# --- the cascade: the router decides who tries, the validator whether the answer is served ------
MAX_SENT_BACK = 0.3  # a cascade point sending back more of the traffic is not offered
MAX_PATH = 120  # the cascade points a category's sequence tests at most


@dataclass(frozen=True)
class CascadePoint:
    """The cascade at router threshold ``router`` and validator threshold ``validator``: of
    the held-out pairs, ``share`` the student serves (``n`` pairs, ``acceptable`` of them
    found acceptable), ``sent_back`` the share the student answered but the validator sent to
    the teacher (they wait for both), and the Clopper-Pearson ``bound`` of the served pairs'
    acceptable rate."""

    router: float
    validator: float
    n: int
    acceptable: int
    share: float
    sent_back: float
    bound: float


@dataclass(frozen=True)
class CascadeChoice:
    category: str
    floor: float
    alpha: float
    held_out: int
    tested: list[CascadePoint] = field(default_factory=list)  # in the sequence's order
    certified: int = 0  # how many of ``tested`` reached the floor (the first ones)
    chosen: CascadePoint | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "floor": self.floor,
            "alpha": self.alpha,
            "held_out": self.held_out,
            "certified": self.certified,
            "chosen": asdict(self.chosen) if self.chosen else None,
            "tested": [asdict(p) for p in self.tested],
        }

    @classmethod
    def from_dict(cls, category: str, d: dict[str, Any]) -> CascadeChoice:
        chosen = d.get("chosen")
        return cls(
            category,
            d["floor"],
            d["alpha"],
            d["held_out"],
            [CascadePoint(**p) for p in d.get("tested", [])],
            int(d.get("certified", 0)),
            CascadePoint(**chosen) if chosen else None,
        )


def cascade_path(
    router_scores: Sequence[float],
    validator_scores: Sequence[float | None],
    labels: Sequence[bool],
    weights: Sequence[float],
    *,
    router_grid: Sequence[float],
    validator_grid: Sequence[float],
    start: float = START_SHARE,
    max_sent_back: float = MAX_SENT_BACK,
) -> list[tuple[float, float]]:
    """The order in which a category's cascade points are tested, from the **training** pairs
    only (cross-fitted scores; ``validator_scores`` None: the student gave no answer, never
    served). Of every (router, validator) threshold pair of the two grids that serves at
    least ``start`` of the training pairs and sends back at most ``max_sent_back``, the
    frontier: the points no other point beats on both the share served and the acceptable
    rate, from the smallest share (the highest rate) to the largest, as the router's own
    sequence goes from high thresholds to low. The held-out labels are never looked at, so
    fixed-sequence testing along it keeps its level."""
    total = sum(weights)
    if total <= 0:
        return []
    rows = list(zip(router_scores, validator_scores, labels, weights, strict=True))
    found: dict[tuple[float, float], tuple[float, float]] = {}  # (share, rate) -> thresholds
    for tr in router_grid:
        tried = [(v, y, w) for r, v, y, w in rows if r >= tr]
        tried_w = sum(w for _v, _y, w in tried)
        for tv in validator_grid:
            served = [(y, w) for v, y, w in tried if v is not None and v >= tv]
            served_w = sum(w for _y, w in served)
            share = served_w / total
            if share < start - 1e-9 or (tried_w - served_w) / total > max_sent_back:
                continue
            rate = sum(w for y, w in served if y) / served_w
            # the same training pairs served: the lowest thresholds (both grids go from high
            # to low), the most inclusive rule for traffic like them
            found[(share, rate)] = (tr, tv)
    path: list[tuple[float, float]] = []
    best = -1.0
    for (_share, rate), point in sorted(found.items(), key=lambda kv: (-kv[0][0], -kv[0][1])):
        if rate > best:  # nothing serving more is as good: on the frontier
            path.append(point)
            best = rate
    return path[::-1][:MAX_PATH]


def choose_cascade(
    category: str,
    router_scores: Sequence[float],
    validator_scores: Sequence[float | None],
    labels: Sequence[bool],
    path: Sequence[tuple[float, float]],
    *,
    floor: float,
    alpha: float,
) -> CascadeChoice:
    """Fixed-sequence testing along ``path`` on held-out pairs: each point's null is "the
    acceptable rate of what this cascade serves is below the floor"; the sequence stops at
    the first point not certified. Every certified point is valid at once (the family-wise
    error is ``alpha``), so the chosen one is the certified point serving the most of the
    held-out pairs, the one sending back less on a tie."""
    total = len(labels)
    rows = list(zip(router_scores, validator_scores, labels, strict=True))
    tested: list[CascadePoint] = []
    certified = 0
    for tr, tv in path:
        tried = [(v, y) for r, v, y in rows if r >= tr]
        served = [y for v, y in tried if v is not None and v >= tv]
        n, k = len(served), sum(served)
        bound = lower_bound(k, n, alpha)
        share = n / total if total else 0.0
        sent_back = (len(tried) - n) / total if total else 0.0
        tested.append(CascadePoint(tr, tv, n, k, share, sent_back, bound))
        if bound < floor:
            break
        certified += 1
    # a tie: the lower thresholds (the rule that takes traffic like the held-out pairs more)
    chosen = max(
        tested[:certified],
        key=lambda p: (p.share, -p.sent_back, -p.router, -p.validator),
        default=None,
    )
    return CascadeChoice(category, floor, alpha, total, tested, certified, chosen)

"""How well the judge agrees with your reviewers, on the pairs both scored.

Plain functions over plain rows (no database): quadratic weighted kappa, the 5x5 confusion
matrix (human rows, judge columns) and the mean bias (judge minus human), overall and per
category and language. The judge's score of a pair is the mean over its two answer orders,
rounded half up for kappa and the matrix; the bias uses the unrounded mean.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SCALE = (1, 2, 3, 4, 5)
# A judge counts as calibrated from this weighted kappa against people on at least this many
# pairs both scored: the review queue's judge_unsure follows it from there, and the gate uses
# its scores when it was so before the evidence epoch (shadowtutor.gate.evidence).
MIN_JUDGE_KAPPA = 0.4
MIN_CALIBRATION_PAIRS = 30


def weighted_kappa(human: Sequence[int], judge: Sequence[int], *, k: int = 5) -> float:
    """Cohen's kappa with quadratic weights for scores 1..k; NaN when it is undefined (no
    rows, or both raters always give the same single score)."""
    a = np.asarray(human, dtype=int) - 1
    b = np.asarray(judge, dtype=int) - 1
    if len(a) == 0 or len(a) != len(b):
        return math.nan
    observed = np.zeros((k, k))
    np.add.at(observed, (np.clip(a, 0, k - 1), np.clip(b, 0, k - 1)), 1)
    weights = np.subtract.outer(np.arange(k), np.arange(k)) ** 2 / (k - 1) ** 2
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    den = float((weights * expected).sum())
    return math.nan if den == 0 else 1 - float((weights * observed).sum()) / den


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


@dataclass(frozen=True)
class Rated:
    """One pair scored by a person and by the judge (the student's answer)."""

    category: str
    language: str
    human: int  # 1..5
    judge: float  # mean of the two answer orders, 1..5
    consistent: bool = True  # the judge preferred the same answer in both orders


@dataclass(frozen=True)
class Agreement:
    group: str  # "all", "category: greeting", "language: it"
    n: int
    kappa: float
    bias: float  # mean judge minus human
    exact: float  # share where the rounded judge score equals the human one
    consistent: float  # share where the judge agreed with itself across orders


@dataclass(frozen=True)
class Calibration:
    judge_version: str
    n: int
    overall: Agreement
    groups: tuple[Agreement, ...]
    confusion: tuple[tuple[int, ...], ...]  # human score (rows 1..5) x judge score (cols 1..5)

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures stored with gate decisions."""
        o = self.overall
        return {
            "judge_version": self.judge_version,
            "pairs": self.n,
            "weighted_kappa": None if math.isnan(o.kappa) else round(o.kappa, 4),
            "mean_bias": None if math.isnan(o.bias) else round(o.bias, 4),
            "exact_agreement": None if math.isnan(o.exact) else round(o.exact, 4),
        }


def _agreement(group: str, rows: list[Rated]) -> Agreement:
    if not rows:
        return Agreement(group, 0, math.nan, math.nan, math.nan, math.nan)
    human = [r.human for r in rows]
    judge = [round_half_up(r.judge) for r in rows]
    return Agreement(
        group,
        len(rows),
        weighted_kappa(human, judge),
        float(np.mean([r.judge - r.human for r in rows])),
        float(np.mean([h == j for h, j in zip(human, judge, strict=True)])),
        float(np.mean([r.consistent for r in rows])),
    )


def calibrate(rows: Iterable[Rated], *, judge_version: str) -> Calibration:
    rows = list(rows)
    confusion = np.zeros((5, 5), dtype=int)
    for r in rows:
        h = min(5, max(1, r.human)) - 1
        j = min(5, max(1, round_half_up(r.judge))) - 1
        confusion[h, j] += 1
    by: dict[str, list[Rated]] = defaultdict(list)
    for r in rows:
        by[f"category: {r.category}"].append(r)
        by[f"language: {r.language}"].append(r)
    groups = tuple(_agreement(name, by[name]) for name in sorted(by))
    return Calibration(
        judge_version,
        len(rows),
        _agreement("all", rows),
        groups,
        tuple(tuple(int(x) for x in row) for row in confusion),
    )

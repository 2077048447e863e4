"""How much reviewers agree: Krippendorff's alpha on scores, approve/reject agreement per
reviewer pair, and the items where they disagree.

Written here rather than taken from the ``krippendorff`` package: the ordinal alpha is ~30
lines over a coincidence matrix, the package pulls numpy-shaped inputs and nothing else of it
is needed, and a hand-computed example in ``tests/test_agreement.py`` pins the numbers.

Reference: K. Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

LEVELS = ("nominal", "ordinal", "interval")


def coincidences(units: Iterable[Sequence[Any]]) -> dict[tuple[Any, Any], float]:
    """The coincidence matrix o[c, k] of pairable values (units with two or more values)."""
    matrix: dict[tuple[Any, Any], float] = defaultdict(float)
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    matrix[(c, k)] += 1.0 / (m - 1)
    return dict(matrix)


def _delta2(level: str, values: list[Any], n: dict[Any, float]) -> dict[tuple[Any, Any], float]:
    index = {v: i for i, v in enumerate(values)}
    out: dict[tuple[Any, Any], float] = {}
    for c in values:
        for k in values:
            if c == k:
                out[(c, k)] = 0.0
            elif level == "nominal":
                out[(c, k)] = 1.0
            elif level == "interval":
                out[(c, k)] = (float(c) - float(k)) ** 2
            else:  # ordinal: ranks weighted by how often the values in between occur
                lo, hi = sorted((index[c], index[k]))
                between = sum(n[values[g]] for g in range(lo, hi + 1))
                out[(c, k)] = (between - (n[c] + n[k]) / 2) ** 2
    return out


def krippendorff_alpha(units: Iterable[Sequence[Any]], level: str = "ordinal") -> float | None:
    """Krippendorff's alpha. ``units``: one sequence a unit (item) of the values its coders
    (reviewers) gave, ``None`` where a coder gave none. Values must be orderable for
    ``ordinal`` and numbers for ``interval``.

    None when it is undefined: fewer than two pairable values, or only one value used.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    o = coincidences(units)
    if not o:
        return None
    values = sorted({c for c, _ in o})
    n_c = {c: sum(o.get((c, k), 0.0) for k in values) for c in values}
    n = sum(n_c.values())
    if len(values) < 2 or n <= 1:
        return None
    d2 = _delta2(level, values, n_c)
    observed = sum(o.get((c, k), 0.0) * d2[(c, k)] for c in values for k in values)
    expected = sum(n_c[c] * n_c[k] * d2[(c, k)] for c in values for k in values)
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


# --- reviews -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rating:
    """One reviewer's current judgement of one item (the input of everything below)."""

    item_id: int
    reviewer: str
    score: int | None
    decision: str  # approve | reject | skip
    pair_id: str = ""


@dataclass(frozen=True)
class PairAgreement:
    reviewer_a: str
    reviewer_b: str
    items: int  # items both approved or rejected
    agreed: int
    percent: float | None
    kappa: float | None  # Cohen's kappa on approve/reject


def score_alpha(ratings: Iterable[Rating], level: str = "ordinal") -> float | None:
    """Alpha on student scores over items with two or more scored reviews."""
    by_item: dict[int, list[int]] = defaultdict(list)
    for r in ratings:
        if r.decision != "skip" and r.score is not None:
            by_item[r.item_id].append(r.score)
    return krippendorff_alpha(by_item.values(), level)


def _cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    if not pairs:
        return None
    total = len(pairs)
    observed = sum(a == b for a, b in pairs) / total
    labels = {x for p in pairs for x in p}
    expected = sum(
        (sum(a == lab for a, _ in pairs) / total) * (sum(b == lab for _, b in pairs) / total)
        for lab in labels
    )
    if expected >= 1.0:
        return None  # both always said the same one thing: kappa is undefined
    return (observed - expected) / (1 - expected)


def pair_agreement(ratings: Iterable[Rating]) -> list[PairAgreement]:
    """Approve/reject agreement for every pair of reviewers with items in common."""
    decisions: dict[int, dict[str, str]] = defaultdict(dict)
    for r in ratings:
        if r.decision in ("approve", "reject"):
            decisions[r.item_id][r.reviewer] = r.decision
    shared: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for per_reviewer in decisions.values():
        for a, b in combinations(sorted(per_reviewer), 2):
            shared[(a, b)].append((per_reviewer[a], per_reviewer[b]))
    out = []
    for (a, b), pairs in sorted(shared.items()):
        agreed = sum(x == y for x, y in pairs)
        out.append(
            PairAgreement(a, b, len(pairs), agreed, agreed / len(pairs), _cohen_kappa(pairs))
        )
    return out


@dataclass(frozen=True)
class Disagreement:
    item_id: int
    pair_id: str
    decisions: dict[str, str]
    scores: dict[str, int | None]
    reasons: tuple[str, ...]


def disagreements(ratings: Iterable[Rating], score_gap: int = 2) -> list[Disagreement]:
    """Items with two or more approve/reject reviews that differ in decision, or whose
    student scores are ``score_gap`` or more apart. Widest score gap first."""
    by_item: dict[int, list[Rating]] = defaultdict(list)
    for r in ratings:
        if r.decision != "skip":
            by_item[r.item_id].append(r)
    out = []
    for item_id, rs in by_item.items():
        if len(rs) < 2:
            continue
        reasons = []
        if len({r.decision for r in rs}) > 1:
            reasons.append("approve vs reject")
        scores = [r.score for r in rs if r.score is not None]
        if len(scores) >= 2 and max(scores) - min(scores) >= score_gap:
            reasons.append(f"scores {min(scores)} to {max(scores)}")
        if reasons:
            out.append(
                Disagreement(
                    item_id=item_id,
                    pair_id=rs[0].pair_id,
                    decisions={r.reviewer: r.decision for r in rs},
                    scores={r.reviewer: r.score for r in rs},
                    reasons=tuple(reasons),
                )
            )

    def gap(d: Disagreement) -> int:
        s = [v for v in d.scores.values() if v is not None]
        return max(s) - min(s) if len(s) >= 2 else 0

    out.sort(key=lambda d: (-gap(d), d.item_id))
    return out

"""The criteria on means of human ratings: the review score and the paired teacher gap, each
with exact anytime bounds (:mod:`shadowtutor.gate.rectified`), helped by the judge's scores
when there are some."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from shadowtutor.gate import rectified
from shadowtutor.gate.outcomes import (
    INCONCLUSIVE,
    PASS,
    Criterion,
    mean_missing,
    scaled_needed,
    three_way,
)

if TYPE_CHECKING:  # criteria imports this module: its types only, for the annotations
    from shadowtutor.gate.criteria import Aggregate, GateConfig, RatingKey


def design_weight(key: RatingKey) -> float:
    """The design weight of a ``ratings`` key: its fifth element when the review came from a
    queue that sampled with unequal probabilities (``judge_unsure``), else 1."""
    weight = key[4] if len(key) > 4 else None
    return 1.0 if weight is None else float(weight)


def _ppi_inputs(
    agg: Aggregate, pick: Callable[[RatingKey], tuple[float | None, float | None]]
) -> tuple[list[float], ...]:
    """(human, judge-on-the-same-pair, counts, design weights) and (judge only, counts) from
    ``ratings``; ``pick`` maps a ratings key to (human value, judge value)."""
    hy: list[float] = []
    hf: list[float] = []
    hw: list[float] = []
    hd: list[float] = []
    ju: list[float] = []
    jw: list[float] = []
    for key, count in agg.ratings.items():
        y, f = pick(key)
        if y is not None and f is not None:
            hy.append(y)
            hf.append(f)
            hw.append(count)
            hd.append(design_weight(key))
        elif y is None and f is not None:
            ju.append(f)
            jw.append(count)
    return hy, hf, hw, hd, ju, jw


def _ppi_criterion(
    config: GateConfig,
    conf: float,
    project: bool,
    *,
    key: str,
    label: str,
    cat: str,
    human: tuple[list[float], ...],  # values, counts (, design weights): every human rating
    paired: tuple[list[float], ...],
    lo: float,
    hi: float,
    threshold: float,
    what: str,
    name: str,
) -> Criterion:
    """A mean of human ratings against a threshold: the exact betting bound of the human
    mean alone, or (with judge scores) the tightest of it and the prediction-powered bounds
    (:mod:`shadowtutor.gate.rectified`). Reviews from a queue that favoured some pairs
    (judge_unsure) carry design weights, and every bet is scaled by its review's weight
    (exact and anytime too)."""
    values, counts = human[0], human[1]
    weights = human[2] if len(human) > 2 else [1.0] * len(values)
    n_all = int(sum(counts))
    hy, hf, hw, hd, ju, jw = paired
    weighted = any(w != 1.0 for w in weights) or any(w != 1.0 for w in hd)
    # Whether the judge takes a share of the error depends on the judge's presence only,
    # never on how its scores look, so the split is fixed before the data are seen.
    use_judge = config.use_judge and sum(jw) > 0 and (weighted or n_all > 0)
    if weighted and not (use_judge and sum(hw) >= config.min_reviews):
        use_judge = False
    n = int(sum(hw)) if weighted and use_judge else n_all
    how = ("prediction-powered (judge + human reviews), " if use_judge else "human reviews, ") + (
        "betting confidence sequence"
    )
    est0 = float(np.dot(values, counts) / n_all) if n_all else None
    if n < config.min_reviews:
        return Criterion(
            key,
            label,
            cat,
            INCONCLUSIVE,
            n,
            est0,
            None,
            threshold,
            how,
            f"{config.min_reviews - n:,} more {what} needed",
            needed=config.min_reviews - n,
        )

    def fit(k: float, judge: bool = True) -> rectified.MeanBound | None:
        design = (weights, hd) if weighted else (None, None)
        if judge and use_judge:
            # Weighted reviews: the judge's mean is over every judged pair, reviewed or not.
            only = (list(ju) + list(hf), list(jw) + list(hw)) if weighted else (ju, jw)
            return rectified.judged_bound(
                values, np.multiply(counts, k), (hy, hf, np.multiply(hw, k)),
                (only[0], np.multiply(only[1], k)), lo=lo, hi=hi, confidence=conf,
                human_weights=design[0], paired_weights=design[1],
            )  # fmt: skip
        return rectified.human_bound(
            values, np.multiply(counts, k), lo=lo, hi=hi, confidence=conf, weights=design[0]
        )

    def passes(got: rectified.MeanBound | None) -> bool:
        return got is not None and got.lower >= threshold

    got = fit(1.0)
    if got is None:
        return Criterion(key, label, cat, INCONCLUSIVE, n, est0, None, threshold, how,
                         f"more {what} needed", needed=1)  # fmt: skip
    status = three_way(got.lower, got.upper, threshold, True)
    need = saved = None
    if project and got.estimate > threshold:
        if status == INCONCLUSIVE:
            need = scaled_needed(lambda k: passes(fit(k)), n)
        if use_judge and n_all:
            # What people alone would need for the same PASS, at the full error.
            human_need = scaled_needed(lambda k: passes(fit(k, False)), n)
            with_judge = n if status == PASS else need
            if human_need is not None and with_judge is not None:
                saved = max(0, human_need - max(n, with_judge))
    if use_judge:
        how += f"; judge weight {got.power:.2f} over {got.n_judge:,} judge-only pairs"
    if weighted:
        how += "; reviews weighted by their sampling probability (judge_unsure queue)"
    missing = mean_missing(status, got.estimate, threshold, n, need, what, name, project)
    return Criterion(
        key,
        label,
        cat,
        status,
        n,
        got.estimate,
        got.lower,
        threshold,
        how,
        missing,
        needed=None if need is None else max(need - n, 1),
        saved=saved,
        upper=got.upper,
    )


def review_score(
    config: GateConfig, cat: str, agg: Aggregate, conf: float, project: bool = True
) -> Criterion:
    return _ppi_criterion(
        config,
        conf,
        project,
        key="review_score",
        label="Mean review score",
        cat=cat,
        human=_human_scores(agg),
        paired=_ppi_inputs(agg, lambda k: (k[0], k[2])),
        lo=1.0,
        hi=5.0,
        threshold=config.min_review_score,
        what=f"reviewed {cat} pairs",
        name="review score",
    )


def _human_scores(agg: Aggregate) -> tuple[list[float], ...]:
    """(scores, counts, design weights) of the human reviews. From ``scores``, unless some
    review carries a design weight (then every human score is in ``ratings`` with it)."""
    if any(len(k) > 4 and k[0] is not None for k in agg.ratings):
        grouped: dict[tuple[float, float], float] = {}
        for key, count in agg.ratings.items():
            if key[0] is not None:
                slot = (float(key[0]), design_weight(key))
                grouped[slot] = grouped.get(slot, 0) + count
        keys = sorted(grouped)
        return [k[0] for k in keys], [grouped[k] for k in keys], [k[1] for k in keys]
    values = sorted(agg.scores)
    return [float(v) for v in values], [float(agg.scores[v]) for v in values]


def teacher_gap(
    config: GateConfig, cat: str, agg: Aggregate, conf: float, project: bool = True
) -> Criterion:
    """Paired non-inferiority: the student's score minus the teacher's on the same pairs is
    at least ``-teacher_margin`` (lower bound), from reviewers' and the judge's paired scores."""
    diffs: dict[tuple[float, float], float] = {}
    for key, count in agg.ratings.items():
        hs, ht = key[0], key[1]
        if hs is not None and ht is not None:
            slot = (float(hs - ht), design_weight(key))
            diffs[slot] = diffs.get(slot, 0) + count

    def pick(k: RatingKey) -> tuple[float | None, float | None]:
        hs, ht, js, jt = k[:4]
        human = None if hs is None or ht is None else float(hs - ht)
        judge = None if js is None or jt is None else float(js - jt)
        return human, judge

    slots = sorted(diffs)
    return _ppi_criterion(
        config,
        conf,
        project,
        key="teacher_gap",
        label="Student minus teacher score",
        cat=cat,
        human=([k[0] for k in slots], [diffs[k] for k in slots], [k[1] for k in slots]),
        paired=_ppi_inputs(agg, pick),
        lo=-4.0,
        hi=4.0,
        threshold=-config.teacher_margin,
        what=f"{cat} pairs with both answers scored",
        name="score gap to the teacher",
    )

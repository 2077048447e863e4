"""The gate uses the judge only when it was calibrated before the evidence epoch: whether
the judge takes a share of the error budget is fixed before the epoch's data, and a judge
that does not track people never costs reviews (a random judge cost 26 % more reviews than
none in bench/gate_simulation.py while the gate always used it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlmodel import Session

from shadowtutor.gate import evidence
from shadowtutor.tables import JudgeScore
from tests.support.gatecases import account, config
from tests.support.gatesim import add_review

EPOCH = datetime(2026, 11, 1, tzinfo=UTC)


def _judged_reviews(session: Session, n: int, *, at: datetime, noise: float, seed: int) -> None:
    """``n`` reviewed pairs, each also scored by the judge (human score + ``noise``)."""
    rng = np.random.default_rng(seed)
    reviewer = account(session, "reviewer") if seed == 0 else 1
    for i in range(n):
        human = int(rng.choice([2, 3, 4, 5], p=[0.1, 0.2, 0.4, 0.3]))
        judged = float(np.clip(np.rint(human + rng.normal(0, noise)), 1, 5))
        pair = f"p{seed}-{i:04d}"
        review = add_review(
            session, pair_id=pair, category="greeting", similarity=0.6,
            pair_ts=at - timedelta(hours=1), method="lexical", reviewer_id=reviewer,
            score=human, decision="approve",
        )  # fmt: skip
        review.created_at = at
        session.add(
            JudgeScore(
                pair_id=pair, template_version="v1", model="judge-x", category="greeting",
                pair_ts=at - timedelta(hours=1), student_score=judged, teacher_score=4.0,
                consistent=True,
            )
        )  # fmt: skip
    session.flush()


def test_a_judge_calibrated_only_inside_the_epoch_is_not_used(session: Session) -> None:
    """Before: the gate used whatever judge scored pairs, so a random judge took a quarter of
    the review bound's error budget. Now 40 well-calibrated reviews written inside the epoch
    do not count towards trusting the judge; the record says why the judge is left out."""
    _judged_reviews(session, 40, at=EPOCH + timedelta(days=2), noise=0.3, seed=0)
    judged, info = evidence.judge_evidence(session=session, config=config(), before=EPOCH)
    assert judged == [] and info is not None
    assert info["before_epoch"]["used"] is False and info["before_epoch"]["pairs"] == 0
    assert "not used" in info["before_epoch"]["why"] and info["pairs"] == 40
    # Without an epoch start (replay), every calibration counts, as before.
    every, _ = evidence.judge_evidence(session=session, config=config())
    assert len(every) == 40


def test_a_judge_calibrated_before_the_epoch_is_used_and_a_random_one_is_not(
    session: Session,
) -> None:
    _judged_reviews(session, 40, at=EPOCH - timedelta(days=3), noise=0.3, seed=0)
    judged, info = evidence.judge_evidence(session=session, config=config(), before=EPOCH)
    assert info is not None and info["before_epoch"]["used"] is True
    assert len(judged) == 40 and info["before_epoch"]["weighted_kappa"] >= 0.4
    assert evidence.judge_trusted(0.1, 500)[0] is False  # a random judge: kappa about 0
    assert evidence.judge_trusted(0.8, 29)[0] is False  # too few pairs to know

"""Reading judge scores back: the newest usable judgement per pair, and calibration against
the current human reviews of the same pairs. Judge rows live in their own table and are only
ever returned as judge scores (never as reviews)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy
from sqlmodel import Session, col, select

from shadowtutor.judge import calibration, templates
from shadowtutor.tables import JudgeScore, Review, ReviewItem, as_utc


@dataclass(frozen=True)
class JudgeRow:
    pair_id: str
    pair_ts: datetime | None
    created_at: datetime
    category: str | None
    language: str | None
    student: float
    teacher: float
    consistent: bool
    version: str
    model: str


def current_judge(session: Session) -> tuple[str, str] | None:
    """(template version, model) with the most usable judgements, preferring the shipped
    default template; None before the judge has scored anything."""
    rows = session.exec(
        select(JudgeScore.template_version, JudgeScore.model, sqlalchemy.func.count())
        .where(col(JudgeScore.student_score).is_not(None))
        .group_by(col(JudgeScore.template_version), col(JudgeScore.model))
    ).all()
    if not rows:
        return None
    counts = {(v, m): n for v, m, n in rows}
    return max(counts, key=lambda k: (k[0] == templates.DEFAULT_VERSION, counts[k]))


def usable(judge: tuple[str, str]) -> sqlalchemy.ColumnElement[bool]:
    """The condition on ``JudgeScore`` rows of a usable judgement by ``judge`` ((template
    version, model)): one with a student score."""
    version, model = judge
    return sqlalchemy.and_(
        col(JudgeScore.template_version) == version,
        col(JudgeScore.model) == model,
        col(JudgeScore.student_score).is_not(None),
    )


def judge_rows(session: Session, judge: tuple[str, str] | None = None) -> list[JudgeRow]:
    """The usable judgements of one judge (default: :func:`current_judge`)."""
    judge = judge or current_judge(session)
    if judge is None:
        return []
    version, model = judge
    # The columns only: whole rows decoded each one's JSON ``calls`` and built an ORM object,
    # 14 of the Readiness replay's 21 s on the demo (issue 27 item 11).
    # SQLAlchemy's select: SQLModel's is typed for at most four columns.
    stmt = sqlalchemy.select(
        *(
            col(c)
            for c in (
                JudgeScore.pair_id, JudgeScore.pair_ts, JudgeScore.created_at,
                JudgeScore.category, JudgeScore.language, JudgeScore.student_score,
                JudgeScore.teacher_score, JudgeScore.consistent,
            )
        )
    ).where(usable(judge))  # fmt: skip
    # The WHERE already leaves out rows without a student score; the test here tells mypy.
    return [
        JudgeRow(
            pair_id,
            as_utc(pair_ts) if pair_ts else None,
            as_utc(created_at),
            category,
            language,
            float(student),
            float(teacher if teacher is not None else student),
            bool(consistent),
            version,
            model,
        )
        for pair_id, pair_ts, created_at, category, language, student, teacher, consistent in (
            session.execute(stmt)
        )
        if student is not None
    ]


def sampling_fields(
    session: Session, judge: tuple[str, str] | None = None
) -> dict[str, dict[str, float | bool | None]]:
    """pair id -> what the review queue's ``judge_unsure`` strategy weighs: the judge's
    student score (``judge_student``), how far its two answer orders disagree on it
    (``judge_spread``) and whether it preferred the same answer in both (``judge_consistent``).
    """
    judge = judge or current_judge(session)
    if judge is None:
        return {}
    stmt = select(JudgeScore).where(usable(judge))
    out: dict[str, dict[str, float | bool | None]] = {}
    for r in session.exec(stmt):
        if r.student_score is None:  # left out by the WHERE; the test here tells mypy
            continue
        orders = {c.get("order"): c for c in r.calls or []}
        # The student's answer is B when the teacher goes first, A when it goes second.
        first = orders.get("teacher_first", {}).get("score_b")
        second = orders.get("student_first", {}).get("score_a")
        spread = None
        if first is not None and second is not None:
            spread = abs(float(first) - float(second))
        out[r.pair_id] = {
            "judge_student": float(r.student_score),
            "judge_spread": spread,
            "judge_consistent": r.consistent,
        }
    return out


def calibrate(
    session: Session, judge: tuple[str, str] | None = None, *, before: datetime | None = None
) -> calibration.Calibration:
    """Agreement of the judge with the current human student scores of the same pairs;
    with ``before``, only the reviews written before it (the gate's calibration from before
    an evidence epoch: data the epoch's test does not use)."""
    judge = judge or current_judge(session)
    label = f"{judge[0]} / {judge[1]}" if judge else "(no judge scores yet)"
    rows = []
    if judge:
        # One join (a pair has one judgement per judge: the table's unique key), where the
        # judge's every row and an IN list of all their pair ids took 0.3 s on the demo's
        # 13,369 scores at each Review progress run (issue 27 item 11).
        stmt = (
            sqlalchemy.select(
                col(Review.student_score), col(Review.created_at), col(ReviewItem.category),
                col(ReviewItem.language), col(JudgeScore.student_score),
                col(JudgeScore.consistent),
            )
            .join(ReviewItem, col(ReviewItem.id) == col(Review.item_id))
            .join(
                JudgeScore,
                sqlalchemy.and_(col(JudgeScore.pair_id) == col(Review.pair_id), usable(judge)),
            )
            .where(
                col(Review.is_current),
                col(Review.student_score).is_not(None),
                col(Review.decision) != "skip",
            )
        )  # fmt: skip
        for score, created_at, category, language, judged, consistent in session.execute(stmt):
            if score is None or judged is None:  # left out by the query; the test tells mypy
                continue
            if before is not None and as_utc(created_at) >= as_utc(before):
                continue  # written in the epoch (SQLite hands times back naive: compared here)
            rows.append(
                calibration.Rated(
                    category or "(none)",
                    language or "(none)",
                    int(score),
                    float(judged),
                    bool(consistent),
                )
            )
    return calibration.calibrate(rows, judge_version=label)


def counts(session: Session) -> dict[str, int | float]:
    """Judge rows, usable ones, failed ones, the total cost of the priced ones, and the
    scored rows without a cost (a model not in the price table) for pages and the CLI."""
    scored = col(JudgeScore.student_score).is_not(None)
    unpriced = sqlalchemy.and_(scored, col(JudgeScore.cost_usd).is_(None))

    def number(condition: sqlalchemy.ColumnElement[bool]) -> sqlalchemy.ColumnElement[int]:
        return sqlalchemy.func.coalesce(
            sqlalchemy.func.sum(sqlalchemy.case((condition, 1), else_=0)), 0
        )

    rows, usable, without_cost, total = session.execute(
        sqlalchemy.select(
            sqlalchemy.func.count(),
            number(scored),
            number(unpriced),
            sqlalchemy.func.coalesce(sqlalchemy.func.sum(col(JudgeScore.cost_usd)), 0.0),
        )
    ).one()
    return {
        "rows": int(rows),
        "scored": int(usable),
        "failed": int(rows) - int(usable),
        "cost_usd": float(total),
        "unpriced": int(without_cost),
    }


def cost_text(total_usd: float, unpriced: int | float, *, unit: str = "unpriced") -> str:
    """The judge's cost in words: never a silent $0 for a model the price table lacks."""
    if unpriced and not total_usd:
        return (
            "cost unknown (the judge model is not in the price table; add it to a price "
            "table and point SHADOWTUTOR_PRICE_TABLE at it)"
        )
    if unpriced:
        return f"cost ${total_usd:.4f} plus unknown for {int(unpriced):,} {unit}"
    return f"cost ${total_usd:.4f}"

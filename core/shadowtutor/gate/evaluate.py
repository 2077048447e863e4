"""Running the gate: ``evaluate`` (gather the window, decide, record the decision, apply the
automatic rollback rules) and ``replay`` (the gate as it would have decided at the end of each
past day; nothing recorded). The window's evidence comes from :mod:`shadowtutor.gate.evidence`,
the decision itself from :func:`shadowtutor.gate.criteria.decide`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.config import Settings
from shadowtutor.gate import decisions, epochs, guard, guard_evidence, rollout
from shadowtutor.gate.criteria import Decision, GateConfig, decide
from shadowtutor.gate.evidence import (
    DayAggregates,
    ReviewRow,
    assemble,
    connect,
    gather,
    judge_evidence,
    log_days,
    pair_kinds,
    review_rows,
    review_start,
    students_under_test,
    window_bounds,
)
from shadowtutor.judge.scores import JudgeRow
from shadowtutor.tables import row_id


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    decision_id: int
    rollback: str | None  # the automatic rollback's reason, when one happened
    feedback: guard.Report | None = None  # the guard's report on users' feedback


def evaluate(
    settings: Settings,
    config: GateConfig,
    *,
    actor_id: permissions.Actor,
    now: datetime | None = None,
    student: str | None = None,
) -> Evaluation:
    """Gather, decide, append the decision and apply the automatic rollback rules (the
    gate's, then the guard's on users' feedback, :func:`rollout.apply_guard`). The actor
    is an account allowed ``gate.approve``, or the operator (``permissions.SYSTEM``: cron).
    ``student``: decide about that student's records and reviews only (None: the default
    student, or with several students each request's primary record)."""
    now = now or datetime.now(UTC)
    decision = current(settings, config, now=now, student=student)
    feedback = guard_evidence.report(settings, config, now=now, student=student)
    with db.session_scope(settings.db_url) as session:
        epoch = epochs.save(
            session, epochs.due(session=session, config=config, student=student, now=now)
        )
        row = decisions.record(
            session=session,
            decision=decision,
            actor_id=actor_id,
            student=student,
            epoch_id=epoch.id,
        )
        back = rollout.apply_decision(session=session, config=config, decision=row)
        if back is None:
            back = rollout.apply_guard(session=session, config=config, report=feedback)
        return Evaluation(decision, row_id(row), back.reason if back else None, feedback)


def current(
    settings: Settings, config: GateConfig, *, now: datetime, student: str | None = None
) -> Decision:
    """The decision on the evidence of the student's current epoch at ``now`` (the epoch
    found due, not recorded: :func:`evaluate` records it), the error budget shared by the
    students under test and spent over the student's epochs."""
    with db.session_scope(settings.db_url) as session:
        epoch = epochs.due(session=session, config=config, student=student, now=now)
        index = epochs.index_of(session=session, epoch=epoch)
        since, about = epoch.started_at, epochs.describe(epoch)
    window = gather(settings, config, now, student, since=since)
    decision = decide(config, window, students=students_under_test(settings), epoch=index)
    return replace(decision, epoch=about)


# --- replay ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayPoint:
    day: date  # the window ends at the end of this day (UTC)
    outcome: str
    eligible: tuple[str, ...]
    pairs: int
    reviews: int
    summary: str


def replay(
    settings: Settings, config: GateConfig, start: date, end: date, step_days: int = 1
) -> list[ReplayPoint]:
    """The gate as it would have decided at the end of each day from ``start`` to ``end``,
    with the reviews that existed then. Nothing is recorded."""
    if end < start:
        raise ValueError(f"--to ({end}) is before --from ({start})")
    first = datetime.combine(start, time(), UTC) + timedelta(days=1)
    last = datetime.combine(end, time(), UTC) + timedelta(days=1)
    con = connect(settings.log_path)
    days = log_days(con, first - timedelta(days=config.window_days), last, config)
    kinds = pair_kinds(con)
    with db.session_scope(settings.db_url) as session:
        reviews = review_rows(session=session, config=config)
        judged, _ = judge_evidence(session=session, config=config)
    return replay_from(config, days, reviews, first, last, step_days, judged=judged, kinds=kinds)


def replay_from(
    config: GateConfig,
    days: DayAggregates,
    reviews: list[ReviewRow],
    first: datetime,
    last: datetime,
    step_days: int = 1,
    *,
    judged: list[JudgeRow] | None = None,
    kinds: dict[str, str] | None = None,
) -> list[ReplayPoint]:
    points = []
    at = first
    while at <= last:
        s, e = window_bounds(config, at)
        # Whole days only: the window's first day is the day after `s` when `s` is midnight.
        inside = {d: v for d, v in days.items() if s.date() <= d < e.date()}
        w = assemble(
            inside, reviews, s, e, review_start=review_start(config, e), judged=judged, kinds=kinds
        )
        d = decide(config, w, project=False)  # the outcome per day; no projections
        points.append(
            ReplayPoint(
                (at - timedelta(days=1)).date(),
                d.outcome,
                d.eligible,
                sum(a.pairs for a in w.categories.values()),
                sum(a.reviews for a in w.categories.values()),
                d.summary,
            )
        )
        at += timedelta(days=step_days)
    return points

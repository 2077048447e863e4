"""Training from the database and the log, by command or on a schedule.

:func:`train` reads what :func:`shadowtutor.router.store.train` needs besides the database:
the log records of the pairs only the judge scored (their messages), and users' feedback on the
answers the student served (:func:`feedback_verdicts`). :func:`retrain_due` is
the schedule's hook: ``shadowtutor gate evaluate`` (run from cron) calls it after each
evaluation, and it trains a new version once ``RETRAIN_AFTER`` people's labels arrived since
the active version's newest one (or when there is no version yet and there are labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.config import Settings
from shadowtutor.gate.criteria import GateConfig
from shadowtutor.gate.evidence import connect, students_under_test
from shadowtutor.log import feedback
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.review.sampling import fetch_records
from shadowtutor.router import store
from shadowtutor.tables import JudgeScore, RouterModel


def judge_records(settings: Settings, student: str) -> list[dict[str, Any]]:
    """The log records of ``student``'s pairs the judge scored (texts for the router)."""
    with db.session_scope(settings.db_url) as session:
        ids = sorted(set(session.exec(select(JudgeScore.pair_id)).all()))
    if not ids:
        return []
    con = connect(settings.log_path, student)
    try:
        records = fetch_records(con, ids)
    finally:
        con.close()
    return [
        r
        for r in records
        if (r.get("student_name") or DEFAULT_STUDENT) == student and r.get("source") != "playground"
    ]


# The student's served answers users liked or disliked (the parameter: the student's name):
# liked = the latest thumbs is up or a rating is at least 80 % of its scale, with no complaint
_FEEDBACK_SQL = f"""
WITH said AS (
  SELECT request_id,
    request_id IN ({feedback.DISLIKED_SQL}) AS disliked,
    coalesce(arg_max(value, ts) FILTER (WHERE kind = 'thumbs') > 0, false)
      OR coalesce(bool_or(kind = 'rating' AND value >= 0.8 * scale), false) AS liked
  FROM feedback GROUP BY request_id
)
SELECT p.id, NOT s.disliked AS ok
FROM pairs p JOIN said s USING (request_id)
WHERE p.served_by = 'student' AND coalesce(p.source, 'live') <> 'playground'
  AND (s.disliked OR s.liked)
"""


def feedback_verdicts(
    settings: Settings, student: str
) -> tuple[dict[str, bool], list[dict[str, Any]]]:
    """Pair id -> users liked (True) or disliked the answer ``student`` served them, and those
    pairs' log records (their texts for the router)."""
    con = connect(settings.log_path, student)
    try:
        rows = con.execute(_FEEDBACK_SQL).fetchall()
        verdicts = {str(pair): bool(ok) for pair, ok in rows}
        records = fetch_records(con, sorted(verdicts))
    finally:
        con.close()
    return verdicts, records


def train(
    settings: Settings,
    config: GateConfig,
    *,
    actor: permissions.Actor,
    student: str = DEFAULT_STUDENT,
    floor: float = store.DEFAULT_FLOOR,
    reason: str = "",
) -> RouterModel:
    records = judge_records(settings, student)
    liked, fed_back = feedback_verdicts(settings, student)
    students = students_under_test(settings)
    with db.session_scope(settings.db_url) as session:
        return store.train(
            session=session,
            actor_id=actor,
            config=config,
            student=student,
            students=students,
            judge_records=records,
            liked=liked,
            feedback_records=fed_back,
            floor=floor,
            reason=reason,
        )


@dataclass(frozen=True)
class Retrain:
    student: str
    new_labels: int
    trained: RouterModel | None
    note: str


def retrain_due(
    settings: Settings,
    config: GateConfig,
    *,
    student: str | None = None,
    threshold: int = store.RETRAIN_AFTER,
) -> Retrain:
    """Train ``student``'s router when enough new labels arrived (see the module docstring);
    as the operator. Says what it did, trained or not."""
    name = student or DEFAULT_STUDENT
    with db.session_scope(settings.db_url) as session:
        fresh = store.new_labels(session, student=name, config=config)
        has_version = (
            session.exec(
                select(RouterModel.id).where(col(RouterModel.student) == name).limit(1)
            ).first()
            is not None
        )
    due = fresh >= threshold or (not has_version and fresh > 0 and fresh >= threshold // 2)
    if not due:
        return Retrain(name, fresh, None, f"{fresh} new label(s), {threshold} retrain the router")
    try:
        row = train(
            settings,
            config,
            actor=permissions.SYSTEM,
            student=name,
            reason=f"scheduled: {fresh} new labels",
        )
    except store.RouterError as exc:
        return Retrain(name, fresh, None, f"not retrained: {exc}")
    return Retrain(name, fresh, row, f"router version {row.version} trained on {fresh} new labels")

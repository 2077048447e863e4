"""Staged rollout: shadow (0 %) -> 10 -> 25 -> 50 -> 100 % of eligible traffic, rollback and
the kill switch.

State is the newest ``RolloutEvent`` row; rows are only appended, so the table is also the
history. Advancing is always a person's act (an admin, with an approved GO or an override of
a newer decision than the last rollback): nothing re-promotes automatically. Rolling back is
automatic on a critical failure (at once), after ``failures_to_rollback`` NO-GO decisions
in a row during a stage, and when the users' feedback on the student's answers is WORSE than
on the teacher's beyond the criteria file's margin (:func:`apply_guard`, the guard of
:mod:`shadowtutor.gate.guard`). The kill switch sends every request to the teacher without changing
the stage; ``SHADOWTUTOR_KILL_SWITCH=1`` does the same from the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import sqlalchemy as sa
from sqlmodel import Session, col, select

from shadowtutor.accounts import permissions
from shadowtutor.gate import decisions, guard, killswitch
from shadowtutor.gate.criteria import NO_GO, GateConfig
from shadowtutor.gate.decisions import DecisionError
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.tables import GateDecision, RolloutEvent, as_utc, utcnow

DEFAULT_SALT = "shadowtutor-rollout-1"


class RolloutError(DecisionError):
    """A rollout step that cannot be taken now; the message says what is missing."""


@dataclass(frozen=True)
class RolloutState:
    stage: int = 0
    killed: bool = False
    categories: tuple[str, ...] = ()
    salt: str = DEFAULT_SALT
    since: datetime | None = None  # when the current stage began
    event_id: int | None = None
    action: str | None = None
    decision_id: int | None = None
    student: str | None = None  # who serves at stage > 0 (None before students were data)
    # category -> the kinds other than plain the student may serve there (their own GO)
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def serving(self) -> int:
        """Percent of eligible traffic the student serves right now (0 when killed)."""
        return 0 if self.killed else self.stage


def _state(stage: int, killed: bool, details: dict[str, Any], **more: Any) -> RolloutState:
    """A rollout event's state: its stage and kill, the rest from its ``details``."""
    return RolloutState(
        stage=stage,
        killed=bool(killed),
        categories=tuple(details.get("categories", [])),
        salt=details.get("salt", DEFAULT_SALT),
        student=details.get("student"),
        kinds={c: tuple(k) for c, k in (details.get("kinds") or {}).items()},
        **more,
    )


def state_of(event: RolloutEvent | None) -> RolloutState:
    if event is None:
        return RolloutState()
    details = event.details or {}
    since = details.get("stage_since")
    return _state(
        event.stage,
        event.killed,
        details,
        since=datetime.fromisoformat(since) if since else as_utc(event.created_at),
        event_id=event.id,
        action=event.action,
        decision_id=event.decision_id,
    )


def newest_event(*, session: Session) -> RolloutEvent | None:
    stmt = select(RolloutEvent).order_by(col(RolloutEvent.id).desc()).limit(1)
    return session.exec(stmt).first()


def state(*, session: Session) -> RolloutState:
    return state_of(newest_event(session=session))


# SQLModel's types leave out the __table__ that SQLAlchemy gives every mapped class.
_SERVING = RolloutEvent.__table__.c  # type: ignore[attr-defined]
_NEWEST_SERVING = (
    sa.select(_SERVING.id, _SERVING.stage, _SERVING.killed, _SERVING.details)
    .order_by(_SERVING.id.desc())
    .limit(1)
)


def serving_state(conn: sa.Connection) -> RolloutState:
    """What routing needs of the current state (stage, kill, categories, salt, student), read
    with one Core query on ``conn``: no ORM session and no ``since``. Every process reads it
    every ``routing.REFRESH_SECONDS`` (``shadowtutor.gate.routing``), where the ORM's read cost
    four times the CPU."""
    row = conn.execute(_NEWEST_SERVING).first()
    if row is None:
        return RolloutState()
    return _state(row.stage, row.killed, row.details or {}, event_id=row.id)


def current_stage(*, session: Session) -> int:
    """Percent of eligible traffic the student serves now: the newest rollout event's stage,
    0 when there is none or the kill switch is on (in the database or the environment)."""
    return 0 if killswitch.env_killed() else state(session=session).serving


def history(*, session: Session, limit: int = 100) -> list[RolloutEvent]:
    stmt = select(RolloutEvent).order_by(col(RolloutEvent.id).desc()).limit(limit)
    return list(session.exec(stmt))


def _append(
    session: Session,
    *,
    current: RolloutState,
    action: str,
    stage: int,
    killed: bool,
    actor_id: int | None,
    reason: str = "",
    categories: tuple[str, ...] | None = None,
    kinds: dict[str, tuple[str, ...]] | None = None,
    salt: str | None = None,
    decision_id: int | None = None,
    extra: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> RolloutEvent:
    now = now or utcnow()
    since = current.since if stage == current.stage and current.since else now
    details = {
        "categories": list(current.categories if categories is None else categories),
        "kinds": {c: list(k) for c, k in (current.kinds if kinds is None else kinds).items()},
        "salt": salt or current.salt,
        "stage_since": since.isoformat(),
        "previous_stage": current.stage,
        "student": current.student,
        **(extra or {}),
    }
    event = RolloutEvent(
        created_at=now,
        action=action,
        stage=stage,
        killed=killed,
        decision_id=decision_id,
        actor_id=actor_id,
        reason=reason,
        details=details,
    )
    session.add(event)
    session.flush()
    return event


def next_stage(config: GateConfig, stage: int) -> int | None:
    i = config.stage_index(stage)
    return config.stages[i + 1].percent if i + 1 < len(config.stages) else None


def last_rollback(*, session: Session) -> RolloutEvent | None:
    stmt = (
        select(RolloutEvent)
        .where(col(RolloutEvent.action).in_(["rollback", "auto_rollback"]))
        .order_by(col(RolloutEvent.id).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def blockers(
    *,
    session: Session,
    config: GateConfig,
    served_at_stage: int,
    now: datetime | None = None,
    student: str | None = None,
    feedback: guard.Report | None = None,
) -> list[str]:
    """Why the rollout (of ``student``; None: of whoever the newest decision is about) may not
    advance now, in plain words; empty when it may. Only one student serves at a time.
    ``feedback``: the guard's report on the serving student, which the criteria file's
    ``[guard] require_no_worse`` asks for (NO_WORSE in every eligible category)."""
    now = now or utcnow()
    cur = state(session=session)
    out: list[str] = []
    if cur.killed:
        out.append("the kill switch is on: turn it off first")
    if next_stage(config, cur.stage) is None:
        out.append(f"already at {cur.stage}%, the last stage")
    appr = decisions.approval(session=session, student=student)
    if not appr.approved:
        out.append(appr.describe() + ": an admin must approve a GO (or override a NO-GO)")
    wanted = student or (decisions.student_of(appr.decision) if appr.decision else None)
    serving = cur.student or DEFAULT_STUDENT
    if cur.stage > 0 and wanted is not None and wanted != serving:
        out.append(
            f"student {serving} serves {cur.stage}% now; only one student serves at a time: "
            f"roll back to 0% before rolling out {wanted}"
        )
    back = last_rollback(session=session)
    if appr.decision is not None and back is not None:
        if as_utc(appr.decision.created_at) <= as_utc(back.created_at):
            out.append(
                f"rolled back at {as_utc(back.created_at):%Y-%m-%d %H:%M} UTC: a decision made "
                "after the rollback must be approved (no automatic re-promotion)"
            )
    if cur.stage > 0 and not cur.killed:
        rule = config.stages[config.stage_index(cur.stage)]
        hours = (now - cur.since).total_seconds() / 3600 if cur.since else 0.0
        if served_at_stage < rule.min_requests:
            out.append(
                f"{rule.min_requests - served_at_stage:,} more requests served by the student at "
                f"{cur.stage}% needed ({served_at_stage:,} of {rule.min_requests:,})"
            )
        if hours < rule.min_hours:
            out.append(
                f"{rule.min_hours - hours:.1f} more hours at {cur.stage}% needed "
                f"({hours:.1f} h of {rule.min_hours:g} h)"
            )
    out.extend(_feedback_blockers(config, cur, feedback))
    return out


def _feedback_blockers(
    config: GateConfig, cur: RolloutState, feedback: guard.Report | None
) -> list[str]:
    """What the users' feedback says against advancing (see :func:`blockers`)."""
    if feedback is not None and feedback.worse:
        return [
            "users' feedback: the student's answers are worse than the teacher's in "
            + ", ".join(dict.fromkeys(c.category for c in feedback.worse))
            + " (a new evidence epoch, e.g. a new student version, must start first)"
        ]
    if not config.guard.require_no_worse or cur.stage == 0 or cur.killed:
        return []  # at 0 % there is no comparison yet: the first stage makes one
    if feedback is None:
        return ["users' feedback was not compared (the criteria file requires NO WORSE)"]
    pending = [c for c in cur.categories if feedback.of(c) != guard.NO_WORSE]
    if not pending:
        return []
    return [
        "users' feedback not yet shown no worse than the teacher's (the criteria file "
        f"requires it) in {', '.join(pending)}"
    ]


def advance(
    *,
    session: Session,
    config: GateConfig,
    actor_id: permissions.Actor,
    served_at_stage: int,
    now: datetime | None = None,
    student: str | None = None,
    feedback: guard.Report | None = None,
) -> RolloutEvent:
    """Move to the next stage (``rollout.advance``: admins) once nothing blocks it; the
    student of the approved decision (``student``'s newest, else the newest of all) serves.
    ``feedback``: the guard's report on the serving student (see :func:`blockers`)."""
    who = permissions.require(session, actor_id, "rollout.advance")
    problems = blockers(
        session=session,
        config=config,
        served_at_stage=served_at_stage,
        now=now,
        student=student,
        feedback=feedback,
    )
    if problems:
        raise RolloutError("cannot advance: " + "; ".join(problems))
    cur = state(session=session)
    appr = decisions.approval(session=session, student=student)
    target = next_stage(config, cur.stage)
    assert target is not None and appr.decision is not None
    return _append(
        session,
        current=cur,
        action="advance",
        stage=target,
        killed=False,
        actor_id=who.id,
        reason=f"{appr.describe()}",
        categories=appr.categories,
        kinds=appr.kinds,
        salt=config.salt if cur.stage == 0 else cur.salt,
        decision_id=appr.decision.id,
        extra={
            "approval": appr.kind,
            "served_at_previous_stage": served_at_stage,
            "student": decisions.student_of(appr.decision),
        },
        now=now,
    )


def rollback(
    *, session: Session, actor_id: permissions.Actor, reason: str, to_stage: int = 0
) -> RolloutEvent:
    """Return to ``to_stage`` (0 %: the teacher serves everyone); ``rollout.kill``."""
    who = permissions.require(session, actor_id, "rollout.kill")
    cur = state(session=session)
    if to_stage >= cur.stage and cur.stage > 0:
        raise RolloutError(f"rolling back from {cur.stage}% must go to a lower stage")
    return _append(
        session,
        current=cur,
        action="rollback",
        stage=min(to_stage, cur.stage),
        killed=cur.killed,
        actor_id=who.id,
        reason=reason.strip() or "manual rollback",
    )


def set_kill(
    *, session: Session, actor_id: permissions.Actor, on: bool, reason: str = ""
) -> RolloutEvent:
    """Pull (``on``) or release the kill switch; the stage is kept for after the release
    (``rollout.kill``). Both need a reason: the audit trail says why the teacher took every
    request, and why the student may serve again."""
    who = permissions.require(session, actor_id, "rollout.kill")
    if not reason.strip():
        raise RolloutError(
            f"give a reason to {'pull' if on else 'release'} the kill switch (the audit trail "
            "records it; `--reason` in the CLI)"
        )
    cur = state(session=session)
    return _append(
        session,
        current=cur,
        action="kill" if on else "unkill",
        stage=cur.stage,
        killed=on,
        actor_id=who.id,
        reason=reason.strip(),
    )


def apply_decision(
    *, session: Session, config: GateConfig, decision: GateDecision
) -> RolloutEvent | None:
    """The automatic rollback rules, run after every recorded decision (audited as
    ``auto_rollback``, checked as the operator's ``rollout.kill``)."""
    cur = state(session=session)
    if cur.stage == 0:
        return None
    serving = cur.student or DEFAULT_STUDENT
    if decisions.student_of(decision) != serving:
        return None  # a decision about a student who is not serving rolls nothing back
    if decision.evidence.get("critical_failure"):
        reason = f"critical failure in decision #{decision.id}: back to 0% at once"
    else:
        k = config.failures_to_rollback
        recent = [
            d
            for d in decisions.history(session=session, limit=k, student=serving)
            if cur.since is None or as_utc(d.created_at) >= cur.since
        ]
        if len(recent) < k or any(d.outcome != NO_GO for d in recent):
            return None
        reason = f"{k} NO-GO decisions in a row (#{recent[-1].id}..#{recent[0].id})"
    # an automatic write is checked like any other: the operator's rollout.kill
    who = permissions.require(session, permissions.SYSTEM, "rollout.kill")
    return _append(
        session,
        current=cur,
        action="auto_rollback",
        stage=0,
        killed=cur.killed,
        actor_id=who.id,
        reason=reason,
        decision_id=decision.id,
    )


def apply_guard(
    *, session: Session, config: GateConfig, report: guard.Report, now: datetime | None = None
) -> RolloutEvent | None:
    """The guard's automatic rollback: when the users' feedback on the serving student's
    answers is WORSE than on the teacher's in one of the rollout's categories, back to 0 %
    at once, with the evidence as the reason (audited as ``auto_rollback``; the operator's
    ``rollout.kill``). Nothing happens at 0 %, about another student, or with ``[guard]
    rollback = false``."""
    cur = state(session=session)
    if cur.stage == 0 or not config.guard.rollback:
        return None
    if report.student != (cur.student or DEFAULT_STUDENT):
        return None
    worse = [c for c in report.worse if not cur.categories or c.category in cur.categories]
    if not worse:
        return None
    who = permissions.require(session, permissions.SYSTEM, "rollout.kill")
    return _append(
        session,
        current=cur,
        action="auto_rollback",
        stage=0,
        killed=cur.killed,
        actor_id=who.id,
        reason=report.reason(),
        extra={"guard": report.evidence()},
        now=now,
    )


def served_at_stage(con: duckdb.DuckDBPyConnection, stage: int, since: datetime | None) -> int:
    """Requests the student served at ``stage`` since the stage began (from the log)."""
    if stage == 0 or since is None:
        return 0
    row = con.execute(
        "SELECT count(*) FROM pairs WHERE served_by = 'student' AND stage = $stage "
        "AND ts >= $since AND is_primary",
        {"stage": float(stage), "since": since.astimezone(UTC).replace(tzinfo=None)},
    ).fetchone()
    return int(row[0] or 0) if row else 0

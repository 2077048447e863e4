"""Gate decisions and what admins do with them: approve, override, revoke; the audit trail.

Decisions (``GateDecision``) and events (``GateEvent``) are only ever appended. An approval
belongs to one decision and lapses as soon as a newer decision exists that was made from
different data (another fingerprint) or a different criteria file (another hash): re-evaluating
the same evidence keeps it. Overriding a FAIL needs a written reason and is flagged as an
override everywhere; a critical FAIL cannot be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from shadowtutor.accounts import permissions
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate.criteria import GO, NO_GO, Decision, label
from shadowtutor.gate.outcomes import FAIL, LEFT_OUT, PASS
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.tables import (
    GateDecision,
    GateEpoch,
    GateEvent,
    RolloutEvent,
    User,
    as_utc,
    row_id,
    utcnow,
)

MIN_REASON = 15  # characters: "ok" is not a reason


class DecisionError(ShadowTutorError, ValueError):
    """A gate action that cannot be done; the message says why and what to do instead."""


def student_of(decision: GateDecision | None) -> str:
    """The student a decision is about (decisions from before students were data: the
    default student)."""
    return (decision.student if decision is not None else None) or DEFAULT_STUDENT


def _about(stmt: SelectOfScalar[GateDecision], student: str | None) -> SelectOfScalar[GateDecision]:
    """``stmt`` narrowed to one student's decisions (None: every decision)."""
    if student is None:
        return stmt
    return stmt.where(func.coalesce(GateDecision.student, DEFAULT_STUDENT) == student)


def record(
    *,
    session: Session,
    decision: Decision,
    actor_id: permissions.Actor,
    student: str | None = None,
    epoch_id: int | None = None,
) -> GateDecision:
    """Append a decision about ``student`` (default: the default student), its evidence from
    the epoch ``epoch_id`` (:mod:`shadowtutor.gate.epochs`). Recording one
    releases nothing (approving does), so the operator may record (cron's `shadowtutor gate
    evaluate`); a named account needs ``gate.approve``."""
    who = (
        actor_id
        if actor_id is permissions.SYSTEM
        else permissions.require(session, actor_id, "gate.approve")
    )
    row = GateDecision(
        created_at=utcnow(),
        outcome=decision.outcome,
        config_version=decision.config_version[:64],
        config_hash=decision.config_hash[:64],
        data_fingerprint=decision.data_fingerprint[:64],
        window_start=decision.window_start,
        window_end=decision.window_end,
        evidence=decision.evidence(),
        created_by=who.id,
        student=(student or DEFAULT_STUDENT)[:64],
        epoch_id=epoch_id,
    )
    session.add(row)
    session.flush()
    return row


def latest(*, session: Session, student: str | None = None) -> GateDecision | None:
    stmt = _about(select(GateDecision), student).order_by(col(GateDecision.id).desc()).limit(1)
    return session.exec(stmt).first()


def history(
    *, session: Session, limit: int = 100, student: str | None = None
) -> list[GateDecision]:
    stmt = _about(select(GateDecision), student).order_by(col(GateDecision.id).desc())
    return list(session.exec(stmt.limit(limit)))


def _same_evidence(a: GateDecision, b: GateDecision) -> bool:
    return a.data_fingerprint == b.data_fingerprint and a.config_hash == b.config_hash


def current_chain(*, session: Session, student: str | None = None) -> list[GateDecision]:
    """The newest decision (about ``student``; None: about anyone) and the decisions just
    before it made from the same evidence."""
    chain: list[GateDecision] = []
    for row in history(session=session, limit=500, student=student):
        if chain and not _same_evidence(row, chain[0]):
            break
        chain.append(row)
    return chain


def override_categories(evidence: dict[str, Any]) -> list[str]:
    """Categories an override may release: every criterion is PASS or a non-critical FAIL.
    An override releases plain requests only: the other kinds need their own GO."""
    by_cat: dict[str, set[str]] = {}
    for c in evidence.get("criteria", []):
        plain = c.get("kind", "plain") == "plain"
        if c["category"] != "all" and plain and c["status"] != LEFT_OUT:
            by_cat.setdefault(c["category"], set()).add(c["status"])
    return [cat for cat, states in by_cat.items() if states <= {PASS, FAIL} and FAIL in states]


@dataclass(frozen=True)
class Approval:
    decision: GateDecision | None  # the newest decision
    approved: bool
    kind: str | None  # approve | override | None
    event: GateEvent | None
    categories: tuple[str, ...]  # categories the approval releases (their plain requests)
    # category -> the other kinds of request the approval releases there (their own GO)
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def describe(self) -> str:
        if self.decision is None:
            return "no decision yet: evaluate the gate first"
        if not self.approved:
            return f"decision #{self.decision.id} ({label(self.decision.outcome)}) is not approved"
        flag = " (OVERRIDE of a failed gate)" if self.kind == "override" else ""
        cells = [*self.categories, *(f"{c} {k}" for c, ks in self.kinds.items() for k in ks)]
        return f"decision #{self.decision.id} approved{flag} for {', '.join(cells)}"


def approval(*, session: Session, student: str | None = None) -> Approval:
    """The approval state of the newest decision about ``student`` (None: the newest
    decision about anyone)."""
    chain = current_chain(session=session, student=student)
    if not chain:
        return Approval(None, False, None, None, ())
    ids = [d.id for d in chain]
    stmt = (
        select(GateEvent)
        .where(col(GateEvent.decision_id).in_(ids))
        .order_by(col(GateEvent.id).desc())
    )
    newest = chain[0]
    event = session.exec(stmt).first()
    if event is None or event.kind == "revoke":
        return Approval(newest, False, None, event, ())
    if event.kind == "override":
        released = tuple(override_categories(newest.evidence))
        return Approval(newest, True, event.kind, event, released)
    cats = tuple(newest.evidence.get("eligible", []))
    kinds = {c: tuple(k) for c, k in (newest.evidence.get("eligible_kinds") or {}).items() if k}
    return Approval(newest, True, event.kind, event, cats, kinds)


def _current(session: Session, decision_id: int) -> GateDecision:
    decision = session.get(GateDecision, decision_id)
    if decision is None:
        raise DecisionError(f"no gate decision #{decision_id}")
    chain = current_chain(session=session, student=student_of(decision))
    if decision.id not in {d.id for d in chain}:
        raise DecisionError(
            f"decision #{decision_id} is stale: decision #{chain[0].id} was made since from new "
            "data or a changed config. Review and approve that one instead."
        )
    return decision


def approve(*, session: Session, decision_id: int, actor_id: permissions.Actor) -> GateEvent:
    """Approve a GO decision (``gate.approve``: admins)."""
    who = permissions.require(session, actor_id, "gate.approve")
    decision = _current(session, decision_id)
    if decision.outcome != GO:
        hint = (
            "a critical failure cannot be overridden"
            if decision.evidence.get("critical_failure")
            else "an admin may override a failed gate with a written reason"
            if decision.outcome == NO_GO
            else "collect the missing data listed on the Readiness page"
        )
        raise DecisionError(f"decision #{decision_id} is {label(decision.outcome)}, not GO: {hint}")
    return _event(session, decision, "approve", who.id, "")


def override(
    *, session: Session, decision_id: int, actor_id: permissions.Actor, reason: str
) -> GateEvent:
    """Release a NO-GO decision's failed (non-critical) categories anyway, with a reason
    (``gate.override``: admins)."""
    who = permissions.require(session, actor_id, "gate.override")
    decision = _current(session, decision_id)
    if decision.outcome != NO_GO:
        raise DecisionError(
            f"decision #{decision_id} is {label(decision.outcome)}: only a NO-GO can be overridden"
        )
    if decision.evidence.get("critical_failure"):
        raise DecisionError(
            f"decision #{decision_id} has a critical failure, which cannot be overridden"
        )
    if len(reason.strip()) < MIN_REASON:
        raise DecisionError(
            f"an override needs a written reason of at least {MIN_REASON} characters"
        )
    if not override_categories(decision.evidence):
        raise DecisionError(
            "no category can be released: each category still has criteria without enough "
            "data (INCONCLUSIVE); collect that data first"
        )
    return _event(session, decision, "override", who.id, reason.strip())


def revoke(
    *, session: Session, decision_id: int, actor_id: permissions.Actor, reason: str
) -> GateEvent:
    """Withdraw the approval of a decision (``gate.approve``: admins)."""
    who = permissions.require(session, actor_id, "gate.approve")
    decision = _current(session, decision_id)
    return _event(session, decision, "revoke", who.id, reason.strip())


def _event(
    session: Session, decision: GateDecision, kind: str, actor_id: int | None, reason: str
) -> GateEvent:
    event = GateEvent(
        decision_id=row_id(decision),
        kind=kind,
        actor_id=actor_id,
        reason=reason,
        created_at=utcnow(),
    )
    session.add(event)
    session.flush()
    return event


# --- audit trail -------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    when: datetime
    who: str
    what: str
    detail: str
    flagged: bool = False
    # The student the row is about ("" for a rollout change not tied to a decision): the
    # trail lists every student's decisions, so the page says whose each one is.
    student: str = ""


def rollout_words(action: str, stage: int, previous: int | None, who: str, reason: str) -> str:
    """A rollout event as the audit trail says it, e.g. "kill switch released by ann: the
    incident is over; back to 10%"."""
    since = "" if previous is None else f"from {previous}% "
    match action:
        case "kill":
            return f"kill switch pulled by {who}: {reason}; the teacher serves every request"
        case "unkill":
            return f"kill switch released by {who}: {reason}; back to {stage}%"
        case "advance":
            return f"rollout advanced by {who} {since}to {stage}%"
        case "rollback":
            return f"rolled back by {who} {since}to {stage}%"
        case "auto_rollback":
            return f"rolled back automatically {since}to {stage}%"
        case _:
            return f"rollout {action} by {who}: stage {stage}%"


def audit(*, session: Session, limit: int = 200) -> list[AuditRow]:
    """Every decision, approval, override, evidence epoch and rollout change, newest
    first."""
    names = {u.id: u.username for u in session.exec(select(User))}

    def who(uid: int | None) -> str:
        return names.get(uid, f"user #{uid}") if uid is not None else "system/CLI"

    rows: list[AuditRow] = []
    decided = history(session=session, limit=limit)
    whose = {d.id: d.student or DEFAULT_STUDENT for d in decided}

    def about(decision_id: int | None) -> str:
        if decision_id is None:
            return ""
        if decision_id not in whose:  # older than the newest ``limit`` decisions
            d = session.get(GateDecision, decision_id)
            whose[decision_id] = (d.student or DEFAULT_STUDENT) if d else ""
        return whose[decision_id]

    for d in decided:
        ev = d.evidence or {}
        rows.append(
            AuditRow(
                d.created_at,
                who(d.created_by),
                f"decision #{d.id}: {label(d.outcome)}",
                f"{ev.get('summary', '')} [config {d.config_version} {d.config_hash[:8]}, "
                f"data {d.data_fingerprint[:8]}]",
                student=whose[d.id],
            )
        )
    for e in session.exec(select(GateEvent).order_by(col(GateEvent.id).desc()).limit(limit)):
        rows.append(
            AuditRow(
                e.created_at,
                who(e.actor_id),
                f"{e.kind} decision #{e.decision_id}",
                e.reason,
                flagged=e.kind == "override",
                student=about(e.decision_id),
            )
        )
    for ep in session.exec(select(GateEpoch).order_by(col(GateEpoch.id).desc()).limit(limit)):
        rows.append(
            AuditRow(
                ep.created_at,
                who(ep.created_by),
                f"evidence epoch for {ep.student} ({ep.kind})",
                f"evidence since {as_utc(ep.started_at):%Y-%m-%d %H:%M} UTC: {ep.reason}",
                flagged=ep.kind == "manual",
                student=ep.student,
            )
        )
    stmt = select(RolloutEvent).order_by(col(RolloutEvent.id).desc()).limit(limit)
    for r in session.exec(stmt):
        cats = ", ".join(r.details.get("categories", [])) if r.details else ""
        previous = (r.details or {}).get("previous_stage")
        rows.append(
            AuditRow(
                r.created_at,
                who(r.actor_id),
                rollout_words(r.action, r.stage, previous, who(r.actor_id), r.reason),
                "; ".join(x for x in (r.reason, cats and f"categories: {cats}") if x),
                flagged=r.action in ("auto_rollback", "kill"),
                student=about(r.decision_id),
            )
        )
    rows.sort(key=lambda r: as_utc(r.when), reverse=True)
    return rows[:limit]

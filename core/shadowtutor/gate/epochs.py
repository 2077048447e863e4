"""Evidence epochs: where the gate's evidence starts, and why.

A confidence sequence covers a sample that grows from a fixed start; a sliding window is a new
sample at every look and falls outside that guarantee (a student exactly at a 98 % success bar
crossed it 13 % of the time over 365 daily looks of a 14-day window). So evidence accumulates
from the start of an epoch and only lapses when a new epoch starts:

- ``student``: the first evaluation of a student, or of a new model or version of it (the
  student registry's model and version); its reviews judged the earlier version;
- ``criteria``: the criteria file changed (another hash): new thresholds are a new test;
- ``manual``: an admin started one, with a written reason (``gate.epoch``), e.g. after a
  change the registry does not see.

Each epoch is a new test on a new stretch of data, so the error budget is spent over the
epochs of a student (:func:`shadowtutor.gate.criteria.error_budget`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from shadowtutor.accounts import permissions
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate.criteria import GateConfig
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.tables import GateEpoch, Student, as_utc, utcnow

MIN_REASON = 15  # characters, as for an override


class EpochError(ShadowTutorError, ValueError):
    """An epoch that cannot be started; the message says why."""


def version_of(session: Session, student: str) -> str:
    """The student's model and version as the registry has them ("" when unregistered)."""
    row = session.exec(select(Student).where(Student.name == student)).first()
    return "" if row is None else f"{row.model} {row.version}".strip()


def newest(*, session: Session, student: str) -> GateEpoch | None:
    stmt = (
        select(GateEpoch)
        .where(GateEpoch.student == student)
        .order_by(col(GateEpoch.id).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def index_of(*, session: Session, epoch: GateEpoch) -> int:
    """1-based: how many epochs the student has had up to and including ``epoch`` (an
    unsaved one comes after every saved one)."""
    stmt = select(func.count()).where(GateEpoch.student == epoch.student)
    if epoch.id is not None:
        stmt = stmt.where(col(GateEpoch.id) <= epoch.id)
    return int(session.exec(stmt).one()) + (epoch.id is None)


def due(*, session: Session, config: GateConfig, student: str | None, now: datetime) -> GateEpoch:
    """The epoch the evidence at ``now`` belongs to: the newest one, or a new (unsaved) one
    when there is none yet, the criteria file changed or the student's version did."""
    name = student or DEFAULT_STUDENT
    version = version_of(session, name)
    current = newest(session=session, student=name)
    reason, kind, start = "", "", as_utc(now)
    if current is None:
        kind = "student"
        reg = session.exec(select(Student).where(Student.name == name)).first()
        if reg is not None:
            start, reason = as_utc(reg.created_at), f"student {name} registered"
        else:  # the default student: the evidence the gate looked at before epochs
            start = as_utc(now) - timedelta(days=config.window_days)
            reason = f"first evaluation of student {name} (the last {config.window_days:g} days)"
    elif current.config_hash and current.config_hash != config.hash:
        kind, reason = "criteria", f"criteria file changed (version {config.version})"
    elif current.student_version != version:
        kind, reason = "student", f"student {name} is now {version or 'unregistered'}"
    if not kind:
        return current  # type: ignore[return-value]  # not None: the first branch sets kind
    return GateEpoch(
        student=name,
        started_at=start,
        kind=kind,
        reason=reason,
        config_hash=config.hash[:64],
        student_version=version[:200],
    )


def save(session: Session, epoch: GateEpoch) -> GateEpoch:
    """Record an epoch found due by :func:`due` (the operator's: evaluating records it)."""
    if epoch.id is None:
        session.add(epoch)
        session.flush()
    return epoch


def start(
    *,
    session: Session,
    actor_id: permissions.Actor,
    config: GateConfig,
    student: str | None,
    reason: str,
    now: datetime | None = None,
) -> GateEpoch:
    """Start a new evidence epoch for ``student`` by hand (``gate.epoch``: admins): the
    evidence gathered so far lapses. Needs a written reason, kept with the epoch."""
    who = permissions.require(session, actor_id, "gate.epoch")
    if len(reason.strip()) < MIN_REASON:
        raise EpochError(f"a new epoch needs a written reason of at least {MIN_REASON} characters")
    name = student or DEFAULT_STUDENT
    known = session.exec(select(Student).where(Student.name == name)).first()
    if known is None and name != DEFAULT_STUDENT:
        raise EpochError(
            f"no student {name!r}: `shadowtutor students list` shows the registered ones"
        )
    epoch = GateEpoch(
        student=name,
        started_at=as_utc(now) if now else utcnow(),
        kind="manual",
        reason=reason.strip(),
        config_hash=config.hash[:64],
        student_version=version_of(session, name)[:200],
        created_by=who.id,
    )
    session.add(epoch)
    session.flush()
    return epoch


def describe(epoch: GateEpoch) -> dict[str, str]:
    """What a decision stores about its epoch (JSON-ready)."""
    return {
        "since": as_utc(epoch.started_at).isoformat(),
        "kind": epoch.kind,
        "reason": epoch.reason,
    }


def since_words(epoch: GateEpoch) -> str:
    """ "evidence since 2026-12-07 06:10 UTC, because <reason>": the epoch in words."""
    return f"evidence since {as_utc(epoch.started_at):%Y-%m-%d %H:%M} UTC, because {epoch.reason}"

"""Students as data: register, list, retire, and the default student.

The single-student settings (``SHADOWTUTOR_STUDENT_*``) are the *default student*, named
:data:`DEFAULT`: it is the one shadowed while no student is registered, and every log record
written before students were data (schema version 1) reads as it. Registered students replace
it in the fan-out; retiring one stops its shadowing but keeps its row, so its records and
decisions keep a name. Writes need ``students.manage`` (see
:mod:`shadowtutor.accounts.permissions`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, col, select

from shadowtutor.accounts import permissions
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate import rollout
from shadowtutor.tables import Student, utcnow

DEFAULT = "default"
BACKENDS = ("ollama", "openai")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


class StudentError(ShadowTutorError, ValueError):
    """A student operation that cannot be done; the message says what to fix."""


@dataclass(frozen=True)
class StudentSpec:
    """What the fan-out needs to reach one student (plain data, no ORM object)."""

    name: str
    backend: str
    base_url: str
    model: str
    timeout_s: float
    share_percent: float = 100.0
    monthly_cost_usd: float | None = None
    version: str = ""
    trained_on: str | None = None
    registered: bool = True

    def settings(self, base: Settings) -> Settings:
        """``base`` with this student in the single-student fields (to build its backend)."""
        from dataclasses import replace

        return replace(
            base,
            student_backend=self.backend,
            student_base_url=self.base_url,
            student_model=self.model,
            student_timeout_s=self.timeout_s,
            student_monthly_cost_usd=self.monthly_cost_usd or 0.0,
        )


def default_spec(settings: Settings) -> StudentSpec:
    """The default student: the ``SHADOWTUTOR_STUDENT_*`` settings."""
    return StudentSpec(
        name=DEFAULT,
        backend=settings.student_backend,
        base_url=settings.student_base_url,
        model=settings.student_model,
        timeout_s=settings.student_timeout_s,
        share_percent=100.0,
        monthly_cost_usd=settings.student_monthly_cost_usd or None,
        registered=False,
    )


def spec_of(row: Student, settings: Settings) -> StudentSpec:
    return StudentSpec(
        name=row.name,
        backend=row.backend,
        base_url=row.base_url,
        model=row.model,
        timeout_s=row.timeout_s if row.timeout_s is not None else settings.student_timeout_s,
        share_percent=row.share_percent,
        monthly_cost_usd=row.monthly_cost_usd,
        version=row.version,
        trained_on=row.trained_on,
    )


def _check(
    name: str, backend: str, model: str, share: float, timeout_s: float | None, cost: float | None
) -> None:
    if not _NAME.fullmatch(name or ""):
        raise StudentError(
            f"student name {name!r} must be 1-64 letters, digits, '.', '_', ':' or '-' "
            "(starting with a letter or digit)"
        )
    if backend not in BACKENDS:
        raise StudentError(f"backend {backend!r} is not one of: {', '.join(BACKENDS)}")
    if not model:
        raise StudentError("a student needs a model name (--model)")
    if not 0 < share <= 100:
        raise StudentError(f"the sampling share must be above 0 and at most 100, not {share}")
    if timeout_s is not None and timeout_s <= 0:
        raise StudentError(f"the timeout must be positive, not {timeout_s}")
    if cost is not None and cost < 0:
        raise StudentError(f"the monthly cost must not be negative, not {cost}")


def add(
    *,
    session: Session,
    actor_id: permissions.Actor,
    name: str,
    backend: str,
    model: str,
    base_url: str = "",
    timeout_s: float | None = None,
    share_percent: float = 100.0,
    monthly_cost_usd: float | None = None,
    version: str = "",
    trained_on: str | None = None,
) -> Student:
    """Register a student (``students.manage``). A retired name cannot be reused: its log
    records would then mean two models."""
    who = permissions.require(session, actor_id, "students.manage")
    _check(name, backend, model, share_percent, timeout_s, monthly_cost_usd)
    if name == DEFAULT:
        raise StudentError(f"{DEFAULT!r} is the single-student settings' name; pick another name")
    existing = session.exec(select(Student).where(Student.name == name)).first()
    if existing is not None and existing.retired_at is not None:
        raise StudentError(
            f"a student named {name!r} exists already and is retired: a retired name keeps "
            "its meaning in the log and decisions, so register the new model under a new name "
            "(e.g. with a version suffix)"
        )
    if existing is not None:
        raise StudentError(f"a student named {name!r} exists already (`shadowtutor students list`)")
    row = Student(
        name=name,
        backend=backend,
        base_url=base_url,
        model=model,
        timeout_s=timeout_s,
        share_percent=share_percent,
        monthly_cost_usd=monthly_cost_usd,
        version=version[:64],
        trained_on=(trained_on or None) and trained_on[:64],
        created_by=permissions.actor_id(who),
    )
    session.add(row)
    session.flush()
    return row


def get(*, session: Session, name: str) -> Student:
    row = session.exec(select(Student).where(Student.name == name)).first()
    if row is None:
        raise StudentError(f"no student named {name!r} (`shadowtutor students list`)")
    return row


def list_students(*, session: Session, include_retired: bool = False) -> list[Student]:
    stmt = select(Student).order_by(col(Student.created_at), col(Student.id))
    if not include_retired:
        stmt = stmt.where(col(Student.retired_at).is_(None))
    return list(session.exec(stmt))


@dataclass(frozen=True)
class Retired:
    """What retiring did: the student's row, and the stage the rollout left when it served."""

    student: Student
    rolled_back_from: int = 0

    def describe(self) -> str:
        text = f"Retired student {self.student.name}: it is no longer shadowed"
        if self.rolled_back_from:
            text += (
                f"; the rollout rolled back from {self.rolled_back_from}% to the teacher, "
                "which answers every request again"
            )
        return text + ". Its records and decisions keep its name."


def serving_stage(*, session: Session, name: str) -> int:
    """The percent of eligible traffic ``name`` serves now (0: it serves none)."""
    cur = rollout.state(session=session)
    return cur.stage if cur.stage > 0 and (cur.student or DEFAULT) == name else 0


def retire(
    *,
    session: Session,
    actor_id: permissions.Actor,
    name: str,
    rollback_reason: str | None = None,
) -> Retired:
    """Stop shadowing a student (``students.manage``); its row and records stay. The student
    the rollout serves is refused, unless ``rollback_reason`` is given: then the rollout first
    rolls back to the teacher (0 %, ``rollout.kill``) with that reason in its audit trail."""
    permissions.require(session, actor_id, "students.manage")
    row = get(session=session, name=name)
    if row.retired_at is not None:
        raise StudentError(f"student {name!r} is retired already")
    stage = serving_stage(session=session, name=name)
    if stage and not (rollback_reason or "").strip():
        raise StudentError(
            f"student {name} serves {stage}% of eligible traffic now: retiring it would leave "
            "the rollout serving a student that is gone. Roll back to the teacher first "
            "(Readiness, or `shadowtutor gate rollback`), or retire it with a reason to roll "
            "back (`--rollback-reason`)"
        )
    if stage:
        rollout.rollback(
            session=session,
            actor_id=actor_id,
            reason=f"retiring student {name}: {(rollback_reason or '').strip()}",
        )
    row.retired_at = utcnow()
    session.add(row)
    session.flush()
    return Retired(student=row, rolled_back_from=stage)


def active_specs(
    settings: Settings, *, session: Session | None = None, live: bool = False
) -> list[StudentSpec]:
    """The active registered students, else the default student. ``live``: the ones the
    collector calls, so without the demo's students (their servers do not exist)."""
    if session is None:
        from shadowtutor import db

        with db.session_scope(settings.db_url) as own:
            return active_specs(settings, session=own, live=live)
    rows = [r for r in list_students(session=session) if not (live and r.demo)]
    return [spec_of(r, settings) for r in rows] or [default_spec(settings)]

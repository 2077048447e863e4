"""The Readiness page's evidence epoch: since when the evidence counts and why, and whether a
newer epoch has started since the decision shown (read-only; starting one is
:func:`shadowtutor.gate.epochs.start`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from shadowtutor.gate import epochs
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.tables import as_utc


def pending_note(*, session: Session, student: str | None, evidence: dict[str, Any]) -> str:
    """A line when the student's newest epoch began after the evidence shown was gathered
    (someone started one since, or one is due): "A new evidence epoch started ...: evaluate
    the gate to see its decision." "" when the decision shown is already of the newest one."""
    newest = epochs.newest(session=session, student=student or DEFAULT_STUDENT)
    if newest is None:
        return ""
    shown = (evidence.get("epoch") or {}).get("since")
    if shown and as_utc(datetime.fromisoformat(shown)) >= as_utc(newest.started_at):
        return ""
    return (
        f"A new evidence epoch started since this decision ({newest.kind}): "
        f"{epochs.since_words(newest)}. Evaluate the gate to see a decision on it."
    )

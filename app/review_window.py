"""Whether a review will count toward the gate: a review counts for the pair's student only
when the pair is inside that student's evidence epoch (``gate.epochs``). The queue served a
pair 37 days old without saying its review would not count (issue 27 item 10); the Review
page now prefers pairs inside every student's window and says when one is outside."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import streamlit as st

from shadowtutor import db
from shadowtutor.app import deps
from shadowtutor.gate import criteria, epochs
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.students import registry
from shadowtutor.tables import as_utc, utcnow
from shadowtutor.views import display


@st.cache_data(ttl=60, show_spinner=False)
def starts(db_url: str, gate_config: str) -> dict[str, datetime]:
    """Each active student's evidence start (the default student's when none is registered)."""
    config = criteria.load_config(gate_config or None)
    now = utcnow()
    with db.session_scope(db_url) as session:
        names = [s.name for s in registry.list_students(session=session)] or [DEFAULT_STUDENT]
        return {
            name: as_utc(
                epochs.due(session=session, config=config, student=name, now=now).started_at
            )
            for name in names
        }


def current() -> dict[str, datetime]:
    settings = deps.settings()
    try:
        return starts(settings.db_url, settings.gate_config or "")
    except db.DatabaseError:  # unreachable: the page keeps what it shows; no window known
        return {}


def prefer_since(windows: dict[str, datetime]) -> datetime | None:
    """Pairs since the newest start count for every active student: the queue serves them
    first."""
    return max(windows.values(), default=None)


def outside(item: Any, windows: dict[str, datetime], tz: Any = None) -> str:
    """A sentence when the pair is older than its student's evidence ("" when it counts)."""
    student = (item.snapshot or {}).get("student_name") or DEFAULT_STUDENT
    start = windows.get(student)
    if start is None or item.pair_ts is None or as_utc(item.pair_ts) >= start:
        return ""
    return (
        f"Outside the gate's window: {student}'s evidence starts "
        f"{display.moment(start, tz)} and this pair is from "
        f"{display.moment(item.pair_ts, tz)}. Your review is kept, but it will not count "
        "toward the gate; the queue serves pairs inside the window first."
    )

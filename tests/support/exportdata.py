"""Fixture rows for the export tests: queue items with snapshots and their reviews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from shadowtutor.accounts import permissions, users
from shadowtutor.tables import Review, ReviewItem, UserCreate

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SYSTEM = "You are Tutti, a friendly tutor."
LANGS = ("en", "it", "id", "sv")


def add_user(session: Session, role: str, name: str | None = None) -> int:
    name = name or f"{role}-x"
    existing = users.get_user(session=session, username=name)
    if existing:
        return existing.id
    user = users.add_user(
        session=session,
        user=UserCreate(username=name, role=role, password="password-123"),
        actor_id=permissions.SYSTEM,
    )
    return user.id


def snapshot(
    pair_id: str,
    *,
    question: str,
    teacher: str,
    student: str = "student says hi",
    conversation_id: str | None = None,
    language: str = "en",
    category: str = "casual",
    source: str = "live",
    ts: datetime = T0,
    history: list[dict[str, Any]] | None = None,
    system: str | None = SYSTEM,
    request: dict[str, Any] | None = None,
    teacher_calls: list[dict[str, Any]] | None = None,
    student_calls: list[dict[str, Any]] | None = None,
    after: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A queue item's snapshot; ``request`` (kind, features), the answers' tool calls and
    ``after`` (messages after the question: a tool call and its answer) for tools pairs."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages += history or []
    messages.append({"role": "user", "content": question})
    messages += after or []
    extra = {"request": request} if request else {}
    return extra | {
        "id": pair_id,
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "source": source,
        "conversation_id": conversation_id,
        "language": language,
        "category": category,
        "messages": messages,
        "teacher": {"model": "gpt-4o-mini", "response": teacher, "tool_calls": teacher_calls},
        "student": {"model": "llama3", "response": student, "tool_calls": student_calls},
        "similarity": 0.5,
    }


def add_pair(
    session: Session,
    reviewer_id: int,
    pair_id: str,
    *,
    reviews: list[dict[str, Any]] | None = None,
    **snap: Any,
) -> ReviewItem:
    """One queued pair with its reviews (default: one approving review, student score 4)."""
    snap.setdefault("question", f"question {pair_id}?")
    snap.setdefault("teacher", f"teacher answer {pair_id}.")
    data = snapshot(pair_id, **snap)
    item = ReviewItem(
        pair_id=pair_id,
        snapshot=data,
        language=data["language"],
        category=data["category"],
        pair_ts=snap.get("ts", T0),
        status="done",
    )
    session.add(item)
    session.flush()
    for i, spec in enumerate(reviews if reviews is not None else [{}]):
        spec = dict(spec)
        review = Review(
            item_id=item.id,
            pair_id=pair_id,
            reviewer_id=spec.pop("reviewer_id", reviewer_id),
            student_score=spec.pop("student_score", 4),
            verdict=spec.pop("verdict", "tie"),
            decision=spec.pop("decision", "approve"),
            tags=spec.pop("tags", []),
            corrected_answer=spec.pop("corrected_answer", None),
            is_current=spec.pop("is_current", True),
            created_at=T0 + timedelta(minutes=i),
        )
        assert not spec, spec
        session.add(review)
    session.flush()
    return item


def add_many(session: Session, reviewer_id: int, n: int, *, conversations: int = 0) -> None:
    """``n`` approved pairs over four languages; with ``conversations``, pairs share ids."""
    for i in range(n):
        lang = LANGS[i % len(LANGS)]
        conv = f"conv-{i % conversations}" if conversations else None
        if conv:
            lang = LANGS[(i % conversations) % len(LANGS)]
        add_pair(
            session,
            reviewer_id,
            f"p{i:05d}",
            language=lang,
            category=("greeting", "casual", "business")[i % 3],
            conversation_id=conv,
            ts=T0 + timedelta(hours=i),
            reviews=[{"student_score": 1 + i % 5, "verdict": "teacher" if i % 5 < 2 else "tie"}],
        )

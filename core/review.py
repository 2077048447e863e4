"""The review queue: enqueueing pairs, claims, reviews and their versions, tags, progress.

Store functions are keyword-only and take the session; the caller owns the transaction
(``db.session_scope``). A queued item keeps a snapshot of the pair, so review never depends
on the log files still being there.

Claims: an item shown to a reviewer is claimed for ``claim_minutes``. An item that needs one
review is never claimed by two reviewers at once (PostgreSQL: ``SELECT ... FOR UPDATE SKIP
LOCKED``; SQLite, which has one writer at a time: a conditional ``UPDATE``). An item that needs
k > 1 reviews may be open with several reviewers at once, but a reviewer never gets an item
they have already reviewed or skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from core import logrecord
from core.errors import ShadowTutorError
from core.models import Review, ReviewItem, Tag, utcnow

STRATEGIES = ("random", "stratified", "lowest_similarity", "student_errors", "manual", "demo")
DECISIONS = ("approve", "reject", "skip")
VERDICTS = ("student", "tie", "teacher")

# (name, kind, description): the default taxonomy covers cultural fit and tone first.
DEFAULT_TAGS: tuple[tuple[str, str, str], ...] = (
    (
        "natural phrasing in the user's language",
        "cultural_fit",
        "Reads as a fluent native speaker would write it, not as a translation.",
    ),
    (
        "culturally appropriate",
        "cultural_fit",
        "Examples, forms of address and references fit the user's culture.",
    ),
    (
        "warm colleague-like tone",
        "tone",
        "Friendly and direct, like a helpful colleague; neither stiff nor gushing.",
    ),
    ("robotic", "tone", "Stiff, generic or template-like wording."),
    ("factual error", "error", "States something false."),
    ("hallucination", "error", "Invents facts, sources, features or steps."),
    ("unsafe", "safety", "Harmful, insecure or policy-violating content."),
    ("wrong language", "error", "Answers in a different language from the user's."),
)
TAG_KINDS = ("cultural_fit", "tone", "error", "safety", "other")


class ReviewError(ShadowTutorError, ValueError):
    """A review operation that cannot be done; the message says what to fix."""


# --- tags --------------------------------------------------------------------------------


def seed_default_tags(*, session: Session) -> int:
    """Add the default tags that are missing (by name); return how many were added.

    Safe to call again: existing tags, including ones an admin deactivated, are left alone.
    """
    existing = set(session.exec(select(Tag.name)).all())
    added = 0
    for name, kind, description in DEFAULT_TAGS:
        if name not in existing:
            session.add(Tag(name=name, kind=kind, description=description))
            added += 1
    session.flush()
    return added


def list_tags(*, session: Session, active_only: bool = True) -> list[Tag]:
    stmt = select(Tag).order_by(Tag.kind, Tag.name)
    if active_only:
        stmt = stmt.where(Tag.active)
    return list(session.exec(stmt))


def _clean_tag_name(name: str) -> str:
    clean = " ".join((name or "").split())
    if not clean:
        raise ReviewError("a tag needs a name")
    if len(clean) > 64:
        raise ReviewError(f"tag names have at most 64 characters ({len(clean)} given)")
    return clean


def _check_kind(kind: str) -> str:
    if kind not in TAG_KINDS:
        raise ReviewError(f"unknown tag kind {kind!r}; use one of: {', '.join(TAG_KINDS)}")
    return kind


def add_tag(*, session: Session, name: str, kind: str = "other", description: str = "") -> Tag:
    name = _clean_tag_name(name)
    _check_kind(kind)
    if session.exec(select(Tag).where(Tag.name == name)).first():
        raise ReviewError(f"tag {name!r} exists already")
    tag = Tag(name=name, kind=kind, description=description.strip())
    session.add(tag)
    session.flush()
    return tag


def update_tag(
    *,
    session: Session,
    tag_id: int,
    name: str | None = None,
    kind: str | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> Tag:
    """Change a tag. Renaming does not rewrite earlier reviews, which keep the old name."""
    tag = session.get(Tag, tag_id)
    if tag is None:
        raise ReviewError(f"no tag with id {tag_id}")
    if name is not None:
        name = _clean_tag_name(name)
        clash = session.exec(select(Tag).where(Tag.name == name, Tag.id != tag_id)).first()
        if clash:
            raise ReviewError(f"tag {name!r} exists already")
        tag.name = name
    if kind is not None:
        tag.kind = _check_kind(kind)
    if description is not None:
        tag.description = description.strip()
    if active is not None:
        tag.active = active
    session.add(tag)
    session.flush()
    return tag


def delete_tag(*, session: Session, tag_id: int) -> None:
    """Delete a tag no review uses; a used tag can only be deactivated (keeps history)."""
    tag = session.get(Tag, tag_id)
    if tag is None:
        raise ReviewError(f"no tag with id {tag_id}")
    for tags in session.exec(select(Review.tags)):
        if tag.name in (tags or []):
            raise ReviewError(
                f"tag {tag.name!r} is used by reviews; deactivate it instead of deleting it"
            )
    session.delete(tag)
    session.flush()


# --- enqueue -----------------------------------------------------------------------------


def snapshot(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a log record a reviewer needs, frozen at enqueue time."""
    sim = record.get("similarity") or {}
    routing = record.get("routing") or {}
    return {
        "id": record["id"],
        "ts": record.get("ts"),
        "source": record.get("source"),
        "conversation_id": record.get("conversation_id"),
        "language": record.get("language"),
        "category": record.get("category"),
        "messages": record.get("messages") or [],
        "teacher": logrecord.empty_answer(**(record.get("teacher") or {})),
        "student": logrecord.empty_answer(**(record.get("student") or {})),
        "similarity": sim.get("score"),
        "similarity_method": sim.get("method"),
        "served_by": routing.get("served_by"),
    }


def priority_for(strategy: str, record: dict[str, Any]) -> float:
    """Queue order within the open items (higher first): low similarity and student
    failures come first when the admin asked for them."""
    if strategy == "lowest_similarity":
        score = (record.get("similarity") or {}).get("score")
        return 1.0 - float(score) if score is not None else 0.0
    if strategy == "student_errors":
        return 1.0
    return 0.0


@dataclass(frozen=True)
class EnqueueResult:
    added: int
    already_queued: int
    item_ids: list[int]


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    dialect = session.get_bind().dialect.name
    table = ReviewItem.__table__
    if dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=["pair_id"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["pair_id"])
    else:  # other databases: rely on the pre-check and the unique constraint
        stmt = insert(table)
    ids: list[int] = []
    for row in rows:  # one statement a row: RETURNING tells exactly which rows went in
        inserted = session.execute(stmt.values(**row).returning(table.c.id)).scalar()
        if inserted is not None:
            ids.append(inserted)
    return ids


def enqueue_records(
    *,
    session: Session,
    records: Iterable[dict[str, Any]],
    strategy: str = "random",
    required_reviews: int = 1,
    enqueued_by: int | None = None,
) -> EnqueueResult:
    """Put log records (dicts as in ``core.logrecord``) into the review queue.

    A pair already queued (same id) is skipped, so the same pair never enters twice, also
    when two admins enqueue at the same time (``ON CONFLICT DO NOTHING``).
    """
    if strategy not in STRATEGIES:
        raise ReviewError(f"unknown strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}")
    if not 1 <= required_reviews <= 20:
        raise ReviewError(f"reviews per item must be 1 to 20, not {required_reviews}")
    unique: dict[str, dict[str, Any]] = {}
    for record in records:
        if not record.get("id"):
            raise ReviewError("every record to enqueue needs an 'id'")
        unique.setdefault(str(record["id"]), record)
    existing: set[str] = set()
    ids = list(unique)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        existing.update(
            session.exec(select(ReviewItem.pair_id).where(ReviewItem.pair_id.in_(chunk)))
        )
    now = utcnow()
    rows = []
    for pair_id, record in unique.items():
        if pair_id in existing:
            continue
        snap = snapshot(record)
        ts = record.get("ts")
        rows.append(
            {
                "pair_id": pair_id,
                "snapshot": snap,
                "language": (snap["language"] or None) and snap["language"][:16],
                "category": (snap["category"] or None) and snap["category"][:32],
                "similarity": snap["similarity"],
                "pair_ts": logrecord.parse_ts(ts) if isinstance(ts, str) else ts,
                "strategy": strategy,
                "priority": priority_for(strategy, record),
                "required_reviews": required_reviews,
                "reviews_done": 0,
                "status": "open",
                "enqueued_by": enqueued_by,
                "enqueued_at": now,
            }
        )
    item_ids = _insert_ignoring_duplicates(session, rows) if rows else []
    session.flush()
    return EnqueueResult(
        added=len(item_ids), already_queued=len(unique) - len(item_ids), item_ids=item_ids
    )

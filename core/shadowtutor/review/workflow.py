"""The review queue: enqueueing pairs, claims, reviews and their versions.

Store functions are keyword-only and take the session; the caller owns the transaction
(``db.session_scope``). A queued item keeps a snapshot of the pair, so review never depends
on the log files still being there.

Every write names the acting user: enqueueing needs ``review.enqueue`` (Playground saves
queue their own pair under ``playground.save``); claims, reviews and edits need
``review.submit`` for ``reviewer_id`` (see ``shadowtutor.accounts.permissions``).

Claims: an item shown to a reviewer is claimed for ``claim_minutes``. An item that needs one
review is never claimed by two reviewers at once (PostgreSQL: ``SELECT ... FOR UPDATE SKIP
LOCKED``; SQLite, which has one writer at a time: a conditional ``UPDATE``). An item that needs
k > 1 reviews may be open with several reviewers at once, but a reviewer never gets an item
they have already reviewed or skipped.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, Table, case, insert, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from shadowtutor.accounts import permissions
from shadowtutor.errors import ShadowTutorError
from shadowtutor.judge import scores
from shadowtutor.log import schema
from shadowtutor.review import sampling
from shadowtutor.tables import Review, ReviewItem, Tag, row_id, utcnow

STRATEGIES = (*sampling.STRATEGIES, "manual", "demo")
DECISIONS = ("approve", "reject", "skip")
VERDICTS = ("student", "tie", "teacher")


class ReviewError(ShadowTutorError, ValueError):
    """A review operation that cannot be done; the message says what to fix."""


# action -> the only source it may queue (None: any)
ENQUEUE_ACTIONS: dict[str, str | None] = {"review.enqueue": None, "playground.save": "playground"}


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
        "teacher": schema.empty_answer(**(record.get("teacher") or {})),
        "student": schema.empty_answer(**(record.get("student") or {})),
        "similarity": sim.get("score"),
        "similarity_method": sim.get("method"),
        "served_by": routing.get("served_by"),
        "request_id": record.get("request_id") or record["id"],
        "student_name": record.get("student_name") or schema.DEFAULT_STUDENT,
        # what was asked besides the messages (kind, tool definitions, schema) and how the
        # answers agree by what they are: the Review page shows tool calls and JSON as such
        "request": record.get("request") or {"kind": "plain"},
        "agreement": record.get("agreement") or {},
    }


def priority_for(strategy: str, record: dict[str, Any]) -> float:
    """Queue order within the open items (higher first): low similarity and student
    failures come first when the admin asked for them."""
    if strategy == "lowest_similarity":
        score = (record.get("similarity") or {}).get("score")
        return 1.0 - float(score) if score is not None else 0.0
    if strategy in ("student_errors", "negative_feedback"):
        return 1.0
    return 0.0


@dataclass(frozen=True)
class EnqueueResult:
    added: int
    already_queued: int
    item_ids: list[int]
    bad_ids: list[str] = field(default_factory=list)  # ids over 64 characters: not queued


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    dialect = session.get_bind().dialect.name
    # SQLModel sets __table__ on every table class, but its stubs do not declare it
    table: Table = ReviewItem.__table__  # type: ignore[attr-defined]
    stmt: Insert
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
    enqueued_by: permissions.Actor,
    action: str = "review.enqueue",
    design_weights: Mapping[str, float] | None = None,
) -> EnqueueResult:
    """Put log records (dicts as in ``shadowtutor.log.schema``) into the review queue, as
    ``enqueued_by`` (allowed ``review.enqueue``; or ``playground.save`` for Playground pairs
    only, which is how a reviewer queues the pair they just saved).

    A pair already queued (same id) is skipped, so the same pair never enters twice, also
    when two admins enqueue at the same time (``ON CONFLICT DO NOTHING``). A pair whose id is
    over 64 characters (the log's limit; older logs may hold one) is not queued but listed
    in ``bad_ids``. ``design_weights`` (pair id -> weight, from a ``judge_unsure`` sample)
    go into each item's snapshot, where the gate reads them as inverse-probability weights.
    """
    if action not in ENQUEUE_ACTIONS:
        raise ValueError(f"enqueueing is {' or '.join(ENQUEUE_ACTIONS)}, not {action!r}")
    who = permissions.require(session, enqueued_by, action)
    records = list(records)
    source = ENQUEUE_ACTIONS[action]
    if source and any(r.get("source") != source for r in records):
        raise ReviewError(f"{action} may only queue pairs whose source is {source!r}")
    if strategy not in STRATEGIES:
        raise ReviewError(f"unknown strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}")
    if not 1 <= required_reviews <= 20:
        raise ReviewError(f"reviews per item must be 1 to 20, not {required_reviews}")
    unique: dict[str, dict[str, Any]] = {}
    bad_ids: list[str] = []
    for record in records:
        if not record.get("id"):
            raise ReviewError("every record to enqueue needs an 'id'")
        pair_id = str(record["id"])
        if len(pair_id) > schema.MAX_ID_LENGTH:  # the pair_id column holds 64 characters
            bad_ids.append(pair_id)
            continue
        unique.setdefault(pair_id, record)
    existing: set[str] = set()
    ids = list(unique)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        existing.update(
            session.exec(select(col(ReviewItem.pair_id)).where(col(ReviewItem.pair_id).in_(chunk)))
        )
    now = utcnow()
    rows = []
    for pair_id, record in unique.items():
        if pair_id in existing:
            continue
        snap = snapshot(record)
        if design_weights and pair_id in design_weights:
            snap["design_weight"] = round(float(design_weights[pair_id]), 6)
        ts = record.get("ts")
        rows.append(
            {
                "pair_id": pair_id,
                "snapshot": snap,
                "language": (snap["language"] or None) and snap["language"][:16],
                "category": (snap["category"] or None) and snap["category"][:32],
                "similarity": snap["similarity"],
                "pair_ts": schema.parse_ts(ts) if isinstance(ts, str) else ts,
                "strategy": strategy,
                "priority": priority_for(strategy, record),
                "required_reviews": required_reviews,
                "reviews_done": 0,
                "status": "open",
                "enqueued_by": who.id,
                "enqueued_at": now,
            }
        )
    item_ids = _insert_ignoring_duplicates(session, rows) if rows else []
    session.flush()
    return EnqueueResult(
        added=len(item_ids),
        already_queued=len(unique) - len(item_ids),
        item_ids=item_ids,
        bad_ids=bad_ids,
    )


def queued_pair_ids(*, session: Session) -> set[str]:
    return set(session.exec(select(ReviewItem.pair_id)))


def fill_queue(
    *,
    session: Session,
    con: Any,
    strategy: str,
    size: int,
    seed: int = 0,
    filters: sampling.Filters | None = None,
    required_reviews: int = 1,
    enqueued_by: permissions.Actor,
) -> tuple[sampling.Sample, EnqueueResult]:
    """Sample pairs from the shadow log (DuckDB connection ``con`` with the ``pairs`` view)
    that are not queued yet, and enqueue them (``review.enqueue``)."""
    permissions.require(session, enqueued_by, "review.enqueue")  # before the sampling work
    judged, note = None, ""
    if strategy == "judge_unsure":
        cal = scores.calibrate(session)
        trusted, note = sampling.judge_trusted(cal.overall.kappa, cal.n)
        # Untrusted: no judge fields, so every pair is equally uncertain and weighs 1.
        judged = scores.sampling_fields(session) if trusted else None
    picked = sampling.sample(
        con,
        strategy=strategy,
        size=size,
        seed=seed,
        filters=filters,
        exclude=queued_pair_ids(session=session),
        judged=judged,
        note=note,
    )
    result = enqueue_records(
        session=session,
        records=picked.records,
        strategy=strategy,
        required_reviews=required_reviews,
        enqueued_by=enqueued_by,
        design_weights=picked.weights,
    )
    return picked, result


# --- claims ------------------------------------------------------------------------------


def _reviewed_by(reviewer_id: int) -> Any:
    """Item ids the reviewer has any review of (skips included): never offered again."""
    return select(Review.item_id).where(Review.reviewer_id == reviewer_id)


def _claimable(reviewer_id: int, now: datetime) -> list[Any]:
    free = or_(
        col(ReviewItem.claimed_by).is_(None),
        col(ReviewItem.claimed_until).is_(None),
        col(ReviewItem.claimed_until) < now,
        col(ReviewItem.claimed_by) == reviewer_id,
        col(ReviewItem.required_reviews) > 1,  # k > 1: several reviewers may hold it at once
    )
    return [
        ReviewItem.status == "open",
        col(ReviewItem.reviews_done) < col(ReviewItem.required_reviews),
        free,
        col(ReviewItem.id).not_in(_reviewed_by(reviewer_id)),
    ]


def _queue_order(
    reviewer_id: int, now: datetime, prefer_since: datetime | None = None
) -> list[Any]:
    mine = case((col(ReviewItem.claimed_by) == reviewer_id, 0), else_=1)
    # Pairs inside the gate's evidence window first: a review of an older pair does not
    # count toward the gate (the queue once served a pair 37 days old; issue 27 item 10).
    recent = [case((col(ReviewItem.pair_ts) >= prefer_since, 0), else_=1)] if prefer_since else []
    # Multi-review items someone else holds come after untouched ones.
    held = case(
        (
            (col(ReviewItem.claimed_by).is_not(None)) & (col(ReviewItem.claimed_until) >= now),
            1,
        ),
        else_=0,
    )
    return [mine, held, *recent, col(ReviewItem.priority).desc(), col(ReviewItem.id)]


def claim_next(
    *,
    session: Session,
    reviewer_id: int,
    claim_minutes: float = 15.0,
    now: datetime | None = None,
    filters: dict[str, Any] | None = None,
    prefer_since: datetime | None = None,
) -> ReviewItem | None:
    """Claim the next item for a reviewer (their own unexpired claim first) or None.

    Commit soon after: the claim protects the item from other reviewers once committed.
    ``filters`` may hold ``language`` and ``category``; ``prefer_since``: pairs logged since
    then come before older ones (the gate's evidence window, which the caller knows).
    """
    reviewer_id = row_id(permissions.require(session, reviewer_id, "review.submit"))
    now = now or utcnow()
    until = now + timedelta(minutes=claim_minutes)
    where = _claimable(reviewer_id, now)
    for key in ("language", "category"):
        if filters and filters.get(key):
            where.append(getattr(ReviewItem, key) == filters[key])
    order = _queue_order(reviewer_id, now, prefer_since)
    if session.get_bind().dialect.name != "postgresql":
        # SQLite has one writer at a time: choosing and claiming in one UPDATE is atomic, so
        # "nothing to review" means exactly that (a list read first could all be taken by
        # other reviewers before this one's turn to write).
        first = select(ReviewItem.id).where(*where).order_by(*order).limit(1)
        item_id = session.execute(
            update(ReviewItem)
            .where(col(ReviewItem.id) == first.scalar_subquery())
            .values(claimed_by=reviewer_id, claimed_until=until)
            .returning(col(ReviewItem.id))
            .execution_options(synchronize_session=False)
        ).scalar()
        if item_id is None:
            return None
        item = session.get(ReviewItem, item_id)
        session.refresh(item)
        return item
    stmt = select(ReviewItem.id).where(*where).order_by(*order).limit(1)
    item_id = session.exec(stmt.with_for_update(skip_locked=True)).first()
    candidates = [item_id] if item_id is not None else []
    for item_id in candidates:
        # Conditional: only succeeds if nobody else claimed it since we looked.
        result = session.exec(
            update(ReviewItem)
            .where(col(ReviewItem.id) == item_id, *where)
            .values(claimed_by=reviewer_id, claimed_until=until)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            item = session.get(ReviewItem, item_id)
            session.refresh(item)
            return item
    return None


def claim_item(
    *,
    session: Session,
    item_id: int,
    reviewer_id: int,
    claim_minutes: float = 15.0,
    now: datetime | None = None,
) -> ReviewItem | None:
    """Renew (or take) the claim on one item; None when it is no longer the reviewer's to
    review (done, reviewed by them, or claimed by someone else after their claim lapsed)."""
    reviewer_id = row_id(permissions.require(session, reviewer_id, "review.submit"))
    now = now or utcnow()
    result = session.exec(
        update(ReviewItem)
        .where(col(ReviewItem.id) == item_id, *_claimable(reviewer_id, now))
        .values(claimed_by=reviewer_id, claimed_until=now + timedelta(minutes=claim_minutes))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    item = session.get(ReviewItem, item_id)
    session.refresh(item)
    return item


def release_claim(*, session: Session, item_id: int, reviewer_id: int) -> None:
    reviewer_id = row_id(permissions.require(session, reviewer_id, "review.submit"))
    session.execute(
        update(ReviewItem)
        .where(col(ReviewItem.id) == item_id, col(ReviewItem.claimed_by) == reviewer_id)
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )


# --- reviews -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """What a reviewer says about one pair."""

    decision: str  # approve | reject | skip
    student_score: int | None = None
    teacher_score: int | None = None
    verdict: str | None = None  # student | tie | teacher
    tags: Sequence[str] = ()
    note: str = ""
    corrected_answer: str | None = None
    seconds_spent: float | None = None
    blind: bool = False

    def checked(self) -> Judgement:
        if self.decision not in DECISIONS:
            raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}")
        for name in ("student_score", "teacher_score"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value not in range(1, 6)):
                raise ReviewError(f"{name.replace('_', ' ')} must be 1 to 5, not {value!r}")
        if self.decision != "skip" and self.student_score is None:
            raise ReviewError("give the student a score from 1 to 5 before approving or rejecting")
        if self.verdict is not None and self.verdict not in VERDICTS:
            raise ReviewError(f"verdict must be one of {', '.join(VERDICTS)}")
        if self.seconds_spent is not None and self.seconds_spent < 0:
            raise ReviewError("seconds spent must not be negative")
        return self


def _counts(decision: str) -> int:
    return 0 if decision == "skip" else 1


def _check_tags(session: Session, tags: Sequence[str]) -> list[str]:
    known = set(session.exec(select(Tag.name).where(Tag.active)))
    unknown = [t for t in tags if t not in known]
    if unknown:
        raise ReviewError(
            f"unknown or inactive tag(s): {', '.join(unknown)}; an admin can add them"
        )
    return list(dict.fromkeys(tags))


def _bump(
    session: Session,
    item_id: int,
    delta: int,
    release_for: int | None,
    *,
    reviewer_id: int | None = None,
) -> None:
    """Change an item's review count in one statement (no lost updates under concurrency).

    A review that counts (``delta > 0``) is taken only while the item still needs one, and,
    for ``reviewer_id``, only if nobody else holds an unexpired claim on a one-review item:
    the check and the count are one conditional UPDATE, so k reviews are never exceeded.
    """
    done = ReviewItem.reviews_done + delta
    values: dict[str, Any] = {
        "reviews_done": done,
        "status": case((done >= col(ReviewItem.required_reviews), "done"), else_="open"),
    }
    if release_for is not None:
        values["claimed_by"] = case(
            (col(ReviewItem.claimed_by) == release_for, None), else_=col(ReviewItem.claimed_by)
        )
        values["claimed_until"] = case(
            (col(ReviewItem.claimed_by) == release_for, None), else_=col(ReviewItem.claimed_until)
        )
    where = [col(ReviewItem.id) == item_id]
    if delta > 0:
        where += [
            col(ReviewItem.status) == "open",
            col(ReviewItem.reviews_done) < col(ReviewItem.required_reviews),
        ]
    if reviewer_id is not None:
        now = utcnow()
        where.append(
            or_(
                col(ReviewItem.claimed_by).is_(None),
                col(ReviewItem.claimed_by) == reviewer_id,
                col(ReviewItem.claimed_until).is_(None),
                col(ReviewItem.claimed_until) < now,
                col(ReviewItem.required_reviews) > 1,
            )
        )
    result = session.exec(
        update(ReviewItem)
        .where(*where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise _not_taken(session, item_id, reviewer_id)


def _not_taken(session: Session, item_id: int, reviewer_id: int | None) -> ReviewError:
    """Why a review was not taken, as the reviewer should read it."""
    item = session.get(ReviewItem, item_id)
    if item is None:
        return ReviewError(f"no review item with id {item_id}")
    session.refresh(item)
    if reviewer_id is not None and _has_reviewed(session, item_id, reviewer_id):
        return ReviewError(
            "you have reviewed this item already; change it under 'My recent reviews'"
        )
    if item.status != "open" or item.reviews_done >= item.required_reviews:
        return ReviewError(
            f"this pair has all its {item.required_reviews} review(s) already (others finished "
            "it while you were reviewing); your review was not saved: take the next pair"
        )
    return ReviewError(
        "another reviewer holds this pair now (your claim expired); your review was not "
        "saved: take the next pair"
    )


def _has_reviewed(session: Session, item_id: int, reviewer_id: int) -> bool:
    stmt = select(Review.id).where(Review.item_id == item_id, Review.reviewer_id == reviewer_id)
    return session.exec(stmt).first() is not None


def submit_review(
    *, session: Session, item_id: int, reviewer_id: int, judgement: Judgement
) -> Review:
    """Record a reviewer's judgement of an item and release their claim.

    A skip is recorded too (so the item is not offered to that reviewer again) but does not
    count towards the item's required reviews. Each reviewer reviews an item once; to change
    a review use :func:`edit_review`. A review that counts is refused (ReviewError) when the
    item has all its reviews already, or when another reviewer holds an unexpired claim on a
    one-review item (this reviewer's claim expired and was taken).
    """
    reviewer_id = row_id(permissions.require(session, reviewer_id, "review.submit"))
    judgement.checked()
    tags = _check_tags(session, judgement.tags)
    # Updating the item first locks its row, so a double submit by one reviewer waits here
    # and then sees the first review below.
    # A review that counts is taken only while the item needs one and the reviewer's claim
    # holds (see _bump): k reviews never become k + 1.
    _bump(
        session, item_id, _counts(judgement.decision), release_for=reviewer_id,
        reviewer_id=reviewer_id,
    )  # fmt: skip
    item = session.get(ReviewItem, item_id)
    assert item is not None  # _bump has just updated its row
    session.refresh(item)
    if _has_reviewed(session, item_id, reviewer_id):
        raise ReviewError(
            "you have reviewed this item already; change it under 'My recent reviews'"
        )
    review = _review_row(
        judgement,
        tags,
        item_id=item_id,
        pair_id=item.pair_id,
        reviewer_id=reviewer_id,
        blind=judgement.blind,
    )
    session.add(review)
    session.flush()
    return review


def _review_row(judgement: Judgement, tags: list[str], **ids: Any) -> Review:
    """A new Review row from a judgement (ids: item, pair, reviewer, blind, previous)."""
    return Review(
        student_score=judgement.student_score,
        teacher_score=judgement.teacher_score,
        verdict=judgement.verdict,
        decision=judgement.decision,
        tags=tags,
        note=judgement.note.strip(),
        corrected_answer=(judgement.corrected_answer or "").strip() or None,
        seconds_spent=judgement.seconds_spent,
        **ids,
    )


def edit_review(
    *, session: Session, review_id: int, reviewer_id: int, judgement: Judgement
) -> Review:
    """Change one's own review: a new version is appended and the earlier one kept."""
    reviewer_id = row_id(permissions.require(session, reviewer_id, "review.submit"))
    judgement.checked()
    tags = _check_tags(session, judgement.tags)
    old = session.get(Review, review_id)
    if old is None or old.reviewer_id != reviewer_id:
        raise ReviewError("you can only change your own reviews")
    # Conditional: two edits of the same version cannot both win.
    result = session.exec(
        update(Review)
        .where(col(Review.id) == review_id, col(Review.is_current))
        .values(is_current=False)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise ReviewError("this review was changed already; reload and edit the newest version")
    delta = _counts(judgement.decision) - _counts(old.decision)
    if delta:
        _bump(session, old.item_id, delta, release_for=None)
    new = _review_row(
        judgement,
        tags,
        item_id=old.item_id,
        pair_id=old.pair_id,
        reviewer_id=reviewer_id,
        blind=old.blind,
        previous_id=old.id,
    )
    session.add(new)
    session.flush()
    session.refresh(old)
    return new


def recent_reviews(
    *, session: Session, reviewer_id: int, limit: int = 20
) -> list[tuple[Review, ReviewItem]]:
    """The reviewer's current reviews, newest first, with their items."""
    stmt = (
        select(Review, ReviewItem)
        .join(ReviewItem, col(ReviewItem.id) == col(Review.item_id))
        .where(Review.reviewer_id == reviewer_id, Review.is_current)
        .order_by(col(Review.created_at).desc(), col(Review.id).desc())
        .limit(limit)
    )
    return [(r, i) for r, i in session.exec(stmt)]


def history(*, session: Session, review_id: int) -> list[Review]:
    """A review and its earlier versions, newest first."""
    chain: list[Review] = []
    current = session.get(Review, review_id)
    while current is not None and len(chain) < 1000:
        chain.append(current)
        current = session.get(Review, current.previous_id) if current.previous_id else None
    return chain


# --- display helpers (plain data for pages and the CLI) ------------------------------------


def content_text(content: Any) -> str:
    """A chat message's content as plain text (multi-part contents joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(str(part.get("text") or f"[{part.get('type', 'part')}]"))
            else:
                parts.append(str(part))
        return "\n".join(parts)
    return str(content)


def blind_order(item_id: int, reviewer_id: int) -> bool:
    """True when, in blind mode, answer A is the teacher's (B the student's). Random per
    item and reviewer, but stable across reruns of the page."""
    return random.Random(f"{item_id}:{reviewer_id}").random() < 0.5

"""A small real log with reviews for page and CLI tests (the simulated windows are in
:mod:`shadowtutor.testing.gatesim`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlmodel import Session

from shadowtutor import db
from shadowtutor.config import Settings
from shadowtutor.log import schema, write
from shadowtutor.tables import Review, ReviewItem
from shadowtutor.testing.gatesim import Student, window  # noqa: F401  (re-exported for tests)
from tests.support.apputil import make_user


def fill(settings: Settings, *, failures: int = 0, pairs: int = 1200) -> None:
    """``pairs`` greeting pairs in the last days and 120 good reviews of them."""
    now = datetime.now(UTC)
    rng = np.random.default_rng(0)
    records = [
        schema.make_record(
            messages=[{"role": "user", "content": f"ciao {i}"}],
            teacher={"model": "gpt-4o", "response": "Ciao! Come posso aiutarti?"},
            student={
                "model": "llama3",
                "response": None if i < failures else "Ciao! Come posso aiutarti oggi?",
                "latency_ms": float(rng.lognormal(6, 0.3)),
                "error": "HTTP 500" if i < failures else None,
            },
            ts=now - timedelta(hours=1 + i % 100),
            category="greeting",
            user_hash=f"u{i}",
            similarity={"method": "lexical", "score": 0.7},
        )
        for i in range(pairs)
    ]
    with write.LogWriter(settings.log_path) as w:
        w.append_many(records)
    reviewer = make_user(settings.db_url, "reviewer")
    with db.session_scope(settings.db_url) as s:
        for i, rec in enumerate(records[:120]):
            add_review(
                s,
                pair_id=rec["id"],
                category="greeting",
                similarity=0.7,
                pair_ts=now - timedelta(hours=2),
                method="lexical",
                reviewer_id=reviewer,
                score=5 if i % 3 else 4,
                decision="approve",
            )


def add_review(
    session: Session,
    *,
    pair_id: str,
    category: str,
    similarity: float,
    pair_ts: datetime,
    method: str,
    reviewer_id: int,
    score: int | None,
    decision: str,
    tags: tuple[str, ...] = (),
) -> Review:
    """A review item for one pair and a current review of it (what the gate reads)."""
    item = ReviewItem(
        pair_id=pair_id,
        category=category,
        similarity=similarity,
        pair_ts=pair_ts,
        snapshot={"similarity_method": method},
    )
    session.add(item)
    session.flush()
    review = Review(
        item_id=item.id,
        pair_id=pair_id,
        reviewer_id=reviewer_id,
        student_score=score,
        decision=decision,
        tags=list(tags),
    )
    session.add(review)
    return review

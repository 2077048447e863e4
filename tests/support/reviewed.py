"""People's reviews of given log records, for the router's tests: one reviewer, one review a
record, acceptable ones scored 5 and the others 2; and a router trained on them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from shadowtutor.accounts import permissions
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.review import workflow
from shadowtutor.router import store
from shadowtutor.tables import Review, RouterModel, User


def review(session: Session, records: Sequence[dict[str, Any]], ok: Sequence[bool]) -> None:
    """Queue ``records`` and review each: student score 5 where ``ok``, else 2."""
    reviewer = User(username="rita", role="reviewer", password_hash="x")
    session.add(reviewer)
    session.flush()
    items = workflow.enqueue_records(
        session=session, records=list(records), enqueued_by=permissions.SYSTEM
    ).item_ids
    for record, item_id, good in zip(records, items, ok, strict=True):
        session.add(
            Review(
                item_id=item_id,
                pair_id=record["id"],
                reviewer_id=reviewer.id,
                decision="approve",
                student_score=5 if good else 2,
            )
        )
    session.flush()


def train(session: Session, floor: float) -> RouterModel:
    """A new version of the default student's router, as the operator, one student."""
    from tests.unit.test_gate import config

    return store.train(
        session=session,
        actor_id=permissions.SYSTEM,
        config=config(),
        student=DEFAULT_STUDENT,
        students=1,
        floor=floor,
    )

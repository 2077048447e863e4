"""What the Home page shows next to the log's headline figures: reviews, the newest gate
decision and the rollout state, read from the database in one short session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import select

from shadowtutor import db
from shadowtutor.gate import criteria, decisions, killswitch, rollout
from shadowtutor.tables import Review


@dataclass(frozen=True)
class Overview:
    reviews_done: int
    decision: str | None  # GO | NO_GO | INCONCLUSIVE, or None before the first evaluation
    decided_at: datetime | None
    stage: int
    killed: bool

    @property
    def decision_label(self) -> str:
        return criteria.label(self.decision)


def overview(url: str) -> Overview:
    with db.session_scope(url) as session:
        done = session.exec(
            select(func.count())
            .select_from(Review)
            .where(Review.is_current, Review.decision != "skip")
        ).one()
        latest = decisions.latest(session=session)
        state = rollout.state(session=session)
    return Overview(
        reviews_done=int(done),
        decision=latest.outcome if latest else None,
        decided_at=latest.created_at if latest else None,
        stage=state.stage,
        killed=state.killed or killswitch.env_killed(),
    )

"""Small read-only figures about reviews for overview pages."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from core import db
from core.models import Review


def reviews_done(url: str) -> int:
    """Current (not superseded) reviews that approve or reject a pair."""
    with db.session_scope(url) as session:
        stmt = (
            select(func.count())
            .select_from(Review)
            .where(Review.is_current, Review.decision != "skip")
        )
        return int(session.exec(stmt).one())

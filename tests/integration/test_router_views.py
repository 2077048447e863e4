"""Readiness's router section: the view-model (frontier, thresholds, audit from later
reviews) and the page as every role."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.config import Settings
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.tables import Review, RouterModel, utcnow
from shadowtutor.views import router
from tests.integration.test_router_path import _reviewed_pairs
from tests.support import reviewed
from tests.support.apputil import page_as
from tests.unit.test_gate import config


def _train(settings: Settings) -> None:
    with db.session_scope(settings.db_url) as s:
        _reviewed_pairs(s)
        for review in s.exec(select(Review)).all():  # reviewed before the training
            review.created_at = utcnow() - timedelta(days=2)
            s.add(review)
        s.flush()
        reviewed.train(s, 0.8)


def test_the_audit_counts_only_reviews_given_after_training(migrated: Settings) -> None:
    _train(migrated)
    with db.session_scope(migrated.db_url) as s:
        view = router.load(s, config(), DEFAULT_STUDENT)
        assert view.audit == []  # every review is older than the version
        assert view.choices["business"].threshold is not None
        later = s.exec(select(Review).order_by(Review.id).limit(40)).all()
        for review in later:  # 40 pairs reviewed again after the training, 20 easy, 20 hard
            review.created_at = utcnow() + timedelta(minutes=1)
            s.add(review)
        s.flush()
        view = router.load(s, config(), DEFAULT_STUDENT)
    [row] = view.audit
    assert (row.category, row.reviewed) == ("business", 40)
    assert 15 <= row.routed <= 25 and row.acceptable <= row.routed
    assert row.bound is not None and row.bound < row.acceptable / row.routed
    assert list(router.audit_frame(view).columns)[:3] == [
        "Category",
        "Reviewed since training",
        "Router would route",
    ]
    fig = router.frontier_figure(view)
    assert {t.name for t in fig.data} >= {"business"}
    assert router.thresholds_frame(view)["Category"].tolist() == ["business"]
    assert router.versions_frame(view)["Active"].tolist() == ["yes"]


def test_readiness_shows_the_router_to_every_role(migrated: Settings) -> None:
    _train(migrated)
    with db.session_scope(migrated.db_url) as s:
        version = s.exec(select(RouterModel)).one().version
    for role in permissions.ROLES:
        at = page_as("pages/readiness.py", migrated.db_url, role).run()
        texts = [t.value for t in at.text]
        assert any(f"Router version {version} of {DEFAULT_STUDENT}" in t for t in texts), texts
        assert not at.exception


def test_the_schedule_retrains_only_after_enough_new_labels(migrated: Settings) -> None:
    from shadowtutor.router import schedule

    with db.session_scope(migrated.db_url) as s:
        _reviewed_pairs(s, n=200)
    first = schedule.retrain_due(migrated, config(), threshold=100)
    assert first.trained is not None and first.trained.version == 1, first.note
    again = schedule.retrain_due(migrated, config(), threshold=100)
    assert again.trained is None and again.new_labels == 0
    assert "0 new label(s)" in again.note
    with db.session_scope(migrated.db_url) as s:
        for review in s.exec(select(Review).order_by(Review.id).limit(120)).all():
            review.created_at = utcnow() + timedelta(minutes=5)  # given after version 1
            s.add(review)
    third = schedule.retrain_due(migrated, config(), threshold=100)
    assert third.trained is not None and third.trained.version == 2
    assert third.new_labels == 120

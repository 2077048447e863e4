"""The router on the one request path (issue 31): in routed mode the student serves a request
only when its router's score clears its category's certified threshold (the stage on top),
the record carries the router's version, score and threshold, and a router that cannot be
loaded or errors sends the request to the teacher, counted by reason."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.config import Settings
from shadowtutor.gate import routing
from shadowtutor.log.schema import DEFAULT_STUDENT, make_record
from shadowtutor.review import workflow
from shadowtutor.router import live, store
from shadowtutor.tables import Review, RolloutEvent, RouterModel, User
from shadowtutor.testing.modelserver import ModelServer
from tests.support import reviewed
from tests.support.shadow import collector_for, openai_client, records

EASY = "please add a bag to my order and change the delivery date"
HARD = "I need a refund for my visa and the insurance claim"


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _reviewed_pairs(session: Any, n: int = 400) -> None:
    """``n`` reviewed business pairs: the easy request is acceptable, the hard one is not."""
    rng = random.Random(5)
    reviewer = User(username="rita", role="reviewer", password_hash="x")
    session.add(reviewer)
    session.flush()
    recs = []
    for i in range(n):
        hard = i % 2 == 0
        text = f"{HARD if hard else EASY} {rng.choice(['today', 'now', 'soon'])} {i}"
        recs.append(
            make_record(
                id=f"pair-{i}",
                category="business",
                language="en",
                messages=_messages(text),
                teacher={"model": "gpt-4o-mini", "response": "t"},
                student={"model": "llama3", "response": "s"},
            )
        )
    items = workflow.enqueue_records(
        session=session, records=recs, enqueued_by=permissions.SYSTEM
    ).item_ids
    for i, item_id in enumerate(items):
        ok = i % 2 == 1 or rng.random() < 0.05
        session.add(
            Review(
                item_id=item_id,
                pair_id=f"pair-{i}",
                reviewer_id=reviewer.id,
                decision="approve",
                student_score=5 if ok else 2,
            )
        )
    session.flush()


@pytest.fixture(autouse=True)
def _fresh() -> Any:
    routing.clear_cache()
    live.clear_cache()
    yield
    routing.clear_cache()
    live.clear_cache()


@pytest.fixture
def routed(migrated: Settings) -> Settings:
    """A rollout at 100 % with a GO for greeting only, and the student's router in routed
    mode with a certified threshold for business."""
    with db.session_scope(migrated.db_url) as s:
        s.add(RolloutEvent(action="advance", stage=100, details={"categories": ["greeting"]}))
        _reviewed_pairs(s)
        row = reviewed.train(s, 0.8)
        assert row.choices["business"]["threshold"] is not None, row.choices
        store.set_mode(
            session=s,
            actor_id=permissions.SYSTEM,
            student=DEFAULT_STUDENT,
            mode="routed",
            reason="test",
        )
    assert routing.wait_ready(migrated.db_url) and live.wait_ready(migrated.db_url)
    return migrated


def test_the_router_decides_per_request_in_routed_mode(
    routed: Settings, tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    collector = collector_for(tmp_path, student)
    try:
        easy, _, _ = collector.decide(_messages(EASY), user="u1", category="business")
        hard, _, _ = collector.decide(_messages(HARD), user="u1", category="business")
        greeting, _, _ = collector.decide(_messages("ciao"), user="u1", category="greeting")
        assert easy.served_by == "student" and easy.router_version == 1
        assert easy.router_score is not None and easy.router_threshold is not None
        assert easy.router_score >= easy.router_threshold > hard.router_score  # type: ignore[operator]
        assert (hard.served_by, hard.reason) == ("teacher", "router: below threshold")
        # no certified threshold for greeting: its category GO decides, the score is kept
        assert greeting.served_by == "student" and greeting.router_threshold is None
        assert collector.stats()["teacher_only_by_reason"]["router: below threshold"] == 1
        assert collector.stats()["router"] == {
            "student": 1,
            "below_threshold": 1,
            "no_threshold": 1,
        }
        client = collector.wrap(openai_client(teacher))
        client.chat.completions.create(model="gpt-4o-mini", messages=_messages(EASY), user="u1")
        client.chat.completions.create(model="gpt-4o-mini", messages=_messages(HARD), user="u1")
        logged = records(collector, expect=2)
        by_text = {r["messages"][-1]["content"]: r["routing"] for r in logged}
        assert by_text[EASY]["served_by"] == "student" and by_text[EASY]["router_version"] == 1
        assert by_text[HARD]["served_by"] == "teacher"
        assert by_text[HARD]["router_score"] == pytest.approx(hard.router_score)
        assert by_text[HARD]["reason"] == "router: below threshold"
    finally:
        collector.close()


def test_the_stage_still_applies_on_top(routed: Settings) -> None:
    with db.session_scope(routed.db_url) as s:
        s.add(RolloutEvent(action="rollback", stage=10, details={"categories": ["greeting"]}))
    routing.clear_cache()
    assert routing.wait_ready(routed.db_url)
    served = 0
    for i in range(300):
        route = routing.route(key=f"user-{i}", category="business", settings=routed)
        route = live.apply(route, url=routed.db_url, messages=_messages(EASY), category="business")
        served += route.served_by == "student"
        assert route.router_score is not None
    assert 10 <= served <= 55  # about 10 % of 300 users (their bucket below the stage)


def test_a_router_that_cannot_be_loaded_sends_the_request_to_the_teacher(routed: Settings) -> None:
    with db.session_scope(routed.db_url) as s:
        broken = s.exec(select(RouterModel)).one()
        broken.model = b"not a model"  # a damaged row: the next read cannot load it
        s.add(broken)
    live.clear_cache()
    assert live.wait_ready(routed.db_url)
    route = routing.route(key="u1", category="business", settings=routed)
    assert route.served_by == "teacher"  # no GO for business: only the router lets it in
    greeting = routing.route(key="u1", category="greeting", settings=routed)
    after = live.apply(greeting, url=routed.db_url, messages=_messages("ciao"), category="greeting")
    assert (after.served_by, after.reason) == ("teacher", "router: unavailable")
    assert live.counts()["unavailable"] == 1


def test_a_scoring_error_sends_the_request_to_the_teacher() -> None:
    class Broken:
        def score(self, *a: Any, **kw: Any) -> float:
            raise RuntimeError("boom")

    route = routing.Route("student", 100, 5.0, True, "llama")
    active = live.Active(3, "routed", {"greeting": 0.5}, Broken())  # type: ignore[arg-type]
    after = live.decide(route, active, messages=_messages("ciao"), category="greeting")
    assert (after.served_by, after.reason, after.router_version) == (
        "teacher",
        "router: error",
        3,
    )


@pytest.mark.parametrize(
    ("mode", "kind", "bucket", "served", "reason"),
    [
        ("category", "plain", 5.0, "student", None),  # category mode: the router does nothing
        ("routed", "tools", 5.0, "student", None),  # other kinds keep their own GO
        ("routed", "plain", 5.0, "teacher", "router: below threshold"),
        ("routed", "plain", 50.0, "teacher", None),  # outside the stage: no reason to give
    ],
)
def test_decide_table(mode: str, kind: str, bucket: float, served: str, reason: str | None) -> None:
    class Fixed:
        def score(self, *a: Any, **kw: Any) -> float:
            return 0.2

    stage_route = routing.Route("student" if bucket < 10 else "teacher", 10, bucket, True, "s")
    active = live.Active(1, mode, {"greeting": 0.5}, Fixed())  # type: ignore[arg-type]
    after = live.decide(stage_route, active, messages=[], category="greeting", kind=kind)
    assert (after.served_by, after.reason) == (served, reason)


def test_an_unreadable_state_keeps_the_gate_decision(tmp_path: Path) -> None:
    # a database that refuses every connection: every read fails (a missing SQLite file
    # reads as "no routers" at once, so the reader could finish before the first decision)
    url = "postgresql+psycopg2://nobody@127.0.0.1:1/nothing"
    route = routing.Route("student", 100, 5.0, True, "s")
    before = live.counts().get("state_not_read", 0)
    start = time.monotonic()
    assert live.apply(route, url=url, messages=[], category="greeting") == route
    assert time.monotonic() - start < 1.0  # it never waits for the database
    assert live.counts().get("state_not_read", 0) == before + 1


def test_the_routers_reader_never_creates_a_database_file(tmp_path: Path) -> None:
    """A collector starts before `db upgrade`: the router's reader must not create an empty
    SQLite file, which routing would then report as a database without schema."""
    path = tmp_path / "shadowtutor.db"
    assert live.wait_ready(f"sqlite:///{path}")
    assert not path.exists()
    assert live.snapshot(f"sqlite:///{path}") == {}

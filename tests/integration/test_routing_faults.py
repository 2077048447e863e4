"""Issue 12 item 9: the request path never waits on the database. Routing reads the rollout
state in a background thread (with connect and statement timeouts); a request only looks at
the last state read, and a missing or stale one means the teacher serves."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from shadowtutor.gate import routing
from shadowtutor.testing.listeners import SilentListener
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import collector_for, openai_client

MSGS = [{"role": "user", "content": "ciao, come stai?"}]


@pytest.fixture(autouse=True)
def _fresh_routing() -> Any:
    routing.clear_cache()
    yield
    routing.clear_cache()


def _calls_in_a_thread(client: Any, n: int) -> tuple[threading.Thread, list[str]]:
    answers: list[str] = []

    def run() -> None:
        for i in range(n):
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, user=f"u{i}")
            answers.append(reply.choices[0].message.content)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, answers


def test_a_database_that_never_answers_does_not_hold_a_call(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    """DATABASE_URL at a listener that accepts and never answers: 40 wrapped calls with a
    healthy teacher all return the teacher's answer (they never returned before)."""
    with SilentListener() as hung:
        url = f"postgresql://postgres@127.0.0.1:{hung.port}/shadowtutor"
        collector = collector_for(tmp_path, student, env={"DATABASE_URL": url})
        try:
            client = collector.wrap(openai_client(teacher))
            worker, answers = _calls_in_a_thread(client, 40)
            worker.join(timeout=30)  # generous: each call takes milliseconds
            assert not worker.is_alive(), f"{len(answers)} of 40 calls returned"
            assert answers == ["echo: ciao, come stai?"] * 40
            deadline = time.monotonic() + 10
            while hung.accepted == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert hung.accepted >= 1  # the background refresher did try the database
            assert collector.stats()["routing_fallbacks"]["missing"] >= 1
        finally:
            collector.close()


def test_the_refresher_gives_up_on_a_hung_database(tmp_path: Path) -> None:
    """The read itself is bounded (connect timeout): the refresher reports teacher-only
    instead of hanging, and tries again."""
    with SilentListener() as hung:
        url = f"postgresql://postgres@127.0.0.1:{hung.port}/shadowtutor"
        assert routing.wait_ready(url, timeout=30)  # connect_timeout: 2 s per attempt
        snap = routing.snapshot(url)
        assert (snap.stage, snap.categories) == (0, frozenset())


@pytest.mark.postgres
def test_a_locked_rollout_table_does_not_slow_a_call(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, pg_migrated: str
) -> None:
    """`LOCK TABLE rollout_event IN ACCESS EXCLUSIVE MODE` held by another connection: calls
    made while it is held all return before it is released (one waited 10 s before)."""
    collector = collector_for(tmp_path, student, env={"DATABASE_URL": pg_migrated})
    locker = create_engine(pg_migrated)
    try:
        assert routing.wait_ready(pg_migrated)
        client = collector.wrap(openai_client(teacher))
        refresher = routing._refreshers[pg_migrated]
        with locker.connect() as conn:
            conn.execute(text("LOCK TABLE rollout_event IN ACCESS EXCLUSIVE MODE"))
            locked_at = time.monotonic()
            time.sleep(routing.REFRESH_SECONDS * 1.5)  # a refresh is now waiting on the lock
            worker, answers = _calls_in_a_thread(client, 10)
            worker.join(timeout=20)
            returned_while_locked = not worker.is_alive()
            deadline = time.monotonic() + 30
            while refresher.state[0] < locked_at + 1 and time.monotonic() < deadline:
                time.sleep(0.05)  # the read waiting on the lock gives up (lock_timeout)
            read_returned_while_locked = refresher.state[0] > locked_at + 1
            conn.rollback()  # releases the lock
        worker.join(timeout=30)
        assert returned_while_locked, f"{len(answers)} of 10 calls returned while locked"
        assert answers == ["echo: ciao, come stai?"] * 10
        assert read_returned_while_locked  # the read itself is bounded, not only the request
    finally:
        collector.close()
        locker.dispose()


@pytest.fixture
def own_pg(pg_fresh: str) -> Any:
    """A PostgreSQL database of this test alone (the kill it commits must not reach others);
    ``pg_fresh`` closes its engines and drops it."""
    yield pg_fresh
    routing.clear_cache()


@pytest.mark.postgres
def test_a_kill_in_postgresql_reaches_a_running_loop(own_pg: str) -> None:
    """The kill switch flipped in PostgreSQL reaches a loop routing continuously (through the
    refresher's timed engine); a generous deadline only ends a test whose flip never comes."""
    from shadowtutor import db
    from shadowtutor.accounts.permissions import SYSTEM
    from shadowtutor.config import Settings
    from shadowtutor.gate import rollout
    from shadowtutor.tables import RolloutEvent

    with db.session_scope(own_pg) as s:
        s.add(RolloutEvent(action="advance", stage=100, details={"categories": ["greeting"]}))
    settings = Settings.load({"DATABASE_URL": own_pg})
    assert routing.wait_ready(own_pg, timeout=30)
    assert routing.route(key="u1", category="greeting", settings=settings).served_by == "student"
    with db.session_scope(own_pg) as s:
        rollout.set_kill(session=s, actor_id=SYSTEM, on=True, reason="test")
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not seen or seen[-1] != "teacher"):
        seen.append(routing.route(key="u1", category="greeting", settings=settings).served_by)
        time.sleep(0.01)
    assert seen[-1] == "teacher", "the kill committed in PostgreSQL never reached the loop"
    after = [routing.route(key="u1", category="greeting", settings=settings) for _ in range(20)]
    assert {(r.served_by, r.stage) for r in after} == {("teacher", 0)}

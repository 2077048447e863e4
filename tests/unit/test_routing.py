"""Routing: stable buckets, the settings it is given (the collector's, not the environment's)
and the one reader of the kill switch."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shadowtutor import db
from shadowtutor.config import Settings
from shadowtutor.gate import killswitch, routing
from shadowtutor.tables import RolloutEvent
from tests.support.shadow import offline_collector

MSGS = [{"role": "user", "content": "ciao!"}]


@pytest.fixture(autouse=True)
def _fresh_cache(home: Path) -> Iterator[None]:
    routing.clear_cache()
    yield
    routing.clear_cache()


@pytest.fixture
def rollout_home(tmp_path: Path) -> Settings:
    """Settings of ANOTHER home than the environment's, whose database has a rollout at 100 %
    for greeting (the environment's home has no database at all)."""
    settings = Settings.load({"SHADOWTUTOR_HOME": str(tmp_path / "other-home")})
    settings.home_path.mkdir(parents=True)
    db.upgrade(settings.db_url)
    with db.session_scope(settings.db_url) as s:
        s.add(
            RolloutEvent(
                action="advance", stage=100, details={"categories": ["greeting"], "salt": "s1"}
            )
        )
    return settings


# --- buckets -------------------------------------------------------------------------------


def test_a_bucket_is_the_same_on_every_machine() -> None:
    # SHA-256 of "salt:key", first 8 bytes over 2**64, times 100: pinned, so a change of the
    # hashing (which would move every user to another model) fails here.
    digest = hashlib.sha256(b"s1:alice").digest()
    assert routing.bucket_of("alice", "s1") == int.from_bytes(digest[:8], "big") / 2**64 * 100
    assert routing.bucket_of("alice", "s1") == routing.bucket_of("alice", "s1")
    assert routing.bucket_of("alice", "s1") != routing.bucket_of("bob", "s1")


def test_the_rule_sends_low_buckets_of_released_categories_to_the_student() -> None:
    cats = frozenset({"greeting"})
    low = next(k for k in (f"u{i}" for i in range(1000)) if routing.bucket_of(k, "s") < 10)
    high = next(k for k in (f"u{i}" for i in range(1000)) if routing.bucket_of(k, "s") >= 10)

    def who(stage: int, key: str | None, category: str | None = "greeting") -> str:
        return routing.decide(
            stage=stage, categories=cats, salt="s", key=key, category=category
        ).served_by

    assert (who(10, low), who(10, high)) == ("student", "teacher")
    assert who(0, low) == "teacher" and who(100, high) == "student"
    assert who(100, low, "business") == "teacher" and who(100, None) == "teacher"


# --- settings --------------------------------------------------------------------------------


def test_route_reads_the_rollout_of_the_settings_it_is_given(rollout_home: Settings) -> None:
    assert routing.wait_ready() and routing.wait_ready(rollout_home.db_url)
    assert routing.route(key="u1", category="greeting").served_by == "teacher"  # env: no db
    r = routing.route(key="u1", category="greeting", settings=rollout_home)
    assert (r.served_by, r.stage, r.eligible) == ("student", 100, True)


def test_the_collector_routes_with_its_own_settings(tmp_path: Path, rollout_home: Settings) -> None:
    c = offline_collector(tmp_path, env={"SHADOWTUTOR_HOME": str(rollout_home.home)})
    try:
        assert routing.wait_ready(c.settings.db_url)
        route, shadowed, category = c.decide(MSGS, user="u1")
    finally:
        c.close()
    assert (route.served_by, route.stage, category, shadowed) == ("student", 100, "greeting", True)


# --- the kill switch ----------------------------------------------------------------------------


def test_kill_switch_from_secrets_stops_routing(
    rollout_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {"SHADOWTUTOR_HOME": rollout_home.home, "SHADOWTUTOR_KILL_SWITCH": True}
    killed = Settings.load(env={}, secrets=secrets)
    assert killswitch.killed(killed) is True
    assert routing.wait_ready(killed.db_url)
    r = routing.route(key="u1", category="greeting", settings=killed)
    assert (r.served_by, r.stage) == ("teacher", 0)


@pytest.mark.parametrize(
    ("env", "secret", "expected"),
    [
        (None, None, False),
        (None, True, True),  # secrets (or any settings) when the variable is unset
        ("1", None, True),
        ("yes", False, True),  # the environment wins, as in Settings.load
        ("0", True, False),
        ("off", True, False),
        ("maybe", None, False),  # not a boolean: off, with a warning; never an exception
    ],
)
def test_killed_is_the_one_reader(
    env: str | None, secret: bool | None, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if env is not None:
        monkeypatch.setenv(killswitch.KILL_ENV, env)
    secrets = {} if secret is None else {killswitch.KILL_ENV: secret}
    settings = Settings.load(env={}, secrets=secrets)
    assert killswitch.killed(settings) is expected
    assert killswitch.env_killed() is (expected if env is not None else False)


def test_the_environment_kill_switch_acts_without_reloading_settings(
    rollout_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert routing.wait_ready(rollout_home.db_url)
    assert routing.route(key="u1", category="greeting", settings=rollout_home).served_by == (
        "student"
    )
    monkeypatch.setenv(killswitch.KILL_ENV, "true")  # set after the settings were loaded
    assert routing.route(key="u1", category="greeting", settings=rollout_home).served_by == (
        "teacher"
    )


# --- the request thread never waits on the database -----------------------------------------


def test_missing_then_stale_state_means_teacher_and_is_counted_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A read that has not finished (first request) or that hangs (a stale state) never holds
    a request: the teacher serves, each case is counted per request and logged once."""
    url = "sqlite:///never-read.db"
    live = routing._Snapshot(100, frozenset({"greeting"}), "s1")
    first_read, hang = threading.Event(), threading.Event()
    reads: list[float] = []

    def read(u: str) -> routing._Snapshot:
        assert u == url
        reads.append(time.monotonic())
        if len(reads) == 1:
            first_read.wait(10)  # the first read is slow
        elif hang.is_set():
            threading.Event().wait(10)  # the database hangs
        return live

    monkeypatch.setattr(routing, "_read", read)
    monkeypatch.setattr(routing, "REFRESH_SECONDS", 0.05)

    def who() -> str:
        return routing.route(key="u1", category="greeting", settings=_with_url(url)).served_by

    with caplog.at_level(logging.INFO, logger=routing.log.name):
        assert [who() for _ in range(5)] == ["teacher"] * 5  # before the first read finished
        assert routing.fallbacks() == {"missing": 5, "stale": 0}
        first_read.set()
        assert routing.wait_ready(url)
        assert who() == "student"
        hang.set()
        deadline = time.monotonic() + 10
        while who() == "student" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [who() for _ in range(3)] == ["teacher"] * 3
    assert routing.fallbacks()["stale"] >= 4
    messages = [r.getMessage() for r in caplog.records]
    assert sum("not read yet" in m for m in messages) == 1
    assert sum("stale" in m for m in messages) == 1


def _with_url(url: str) -> Settings:
    return Settings.load(env={"DATABASE_URL": url})

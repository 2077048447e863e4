"""Shared fixtures.

State is isolated by environment: every test gets its own SHADOWTUTOR_HOME (SQLite file and
log folder in a temporary directory). Store tests run on SQLite and, when TEST_DATABASE_URL
names a PostgreSQL server, on a database created for this test session and dropped after it.
`make test` and CI set TEST_DATABASE_URL, so there the PostgreSQL tests run (and fail loudly
if the server is unreachable) instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from shadowtutor import db
from shadowtutor.config import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SHADOWTUTOR_HOME; other ShadowTutor variables are cleared."""
    for key in list(os.environ):
        if key.startswith("SHADOWTUTOR_") or key == "DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("SHADOWTUTOR_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings.load()


@pytest.fixture
def migrated(settings: Settings) -> Settings:
    """Settings whose SQLite database is migrated to head."""
    db.upgrade(settings.db_url)
    return settings


@pytest.fixture
def demo_settings(migrated: Settings) -> Settings:
    """Migrated settings whose log and database hold a small demo (600 pairs over 20 days,
    ending this hour; seed 5): the log the page tests look at."""
    from shadowtutor.demo import generate

    generate.build(url=migrated.db_url, log_dir=migrated.log_path, pairs=600, days=20, seed=5)
    return migrated


# --- PostgreSQL --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a PostgreSQL database created for this test session (dropped afterwards)."""
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        pytest.skip("TEST_DATABASE_URL is not set (make test and CI set it)")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # fail, never skip, when asked for PostgreSQL
        pytest.fail(
            f"PostgreSQL at {make_url(admin_url).render_as_string(hide_password=True)} is not "
            f"reachable ({exc.__class__.__name__}). Start it with: pg_ctlcluster "
            "--skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    name = f"shadowtutor_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        db.dispose_engines(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_migrated(pg_url: str) -> str:
    db.upgrade(pg_url)
    return pg_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database at head: a fresh SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        db.upgrade(url)
        return url
    return request.getfixturevalue("pg_migrated")


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    engine = db.get_engine(db_url)
    with engine.connect() as conn:
        trans = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            yield s
        trans.rollback()


# --- model servers and routing for the request-path tests ---------------------------------


def _server(request: pytest.FixtureRequest, name: str, default: dict[str, Any]) -> Iterator[Any]:
    from shadowtutor.testing.loopback import ModelServer

    with ModelServer(**getattr(request.module, name, default)) as srv:
        yield srv


@pytest.fixture
def teacher(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A loopback teacher (OpenAI protocol); a test module sets ``TEACHER = {...}`` (the
    ModelServer arguments) to change it. Default: gpt-4o-mini, echoing the prompt."""
    yield from _server(request, "TEACHER", {"models": ["gpt-4o-mini"]})


@pytest.fixture
def student(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A loopback student (Ollama protocol); a test module sets ``STUDENT = {...}``.
    Default: llama3, echoing the prompt."""
    yield from _server(request, "STUDENT", {"models": ["llama3"]})


@pytest.fixture
def route_to_student(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``route_to_student(stage, bucket)``: every request is routed to the student from now
    on, as in a rollout at ``stage`` percent (the routing seam replaced, not the database)."""
    from shadowtutor.gate import routing

    def install(stage: int = 10, bucket: float = 3.0) -> None:
        def route(*, key: str | None, category: str | None, settings: Any = None) -> Any:
            return routing.Route("student", stage, bucket, True)

        monkeypatch.setattr(routing, "route", route)

    return install

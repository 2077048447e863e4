"""Shared fixtures.

State is isolated by environment: every test gets its own SHADOWTUTOR_HOME (SQLite file and
log folder in a temporary directory). Store tests run on SQLite and, when TEST_DATABASE_URL
names a PostgreSQL server, on a database created for this test session and dropped after it.
`make test` and CI set TEST_DATABASE_URL, so there the PostgreSQL tests run (and fail loudly
if the server is unreachable) instead of skipping.

What is expensive is built once per session and copied or restored per test
(:mod:`tests.support.copies`): the migrated SQLite file, the small demo (database and log
folder), a migrated PostgreSQL template for databases of one test, and the loopback model
servers. Under pytest-xdist every worker builds its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from shadowtutor import db
from shadowtutor.config import Settings
from tests.support import copies

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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session; tests get copies of it."""
    return copies.migrate_template(tmp_path_factory.mktemp("template") / "migrated.db")


@pytest.fixture
def migrated(settings: Settings, sqlite_template: Path) -> Settings:
    """Settings whose SQLite database is migrated to head (a copy of the session's template)."""
    copies.copy_sqlite(sqlite_template, settings.db_url)
    return settings


@pytest.fixture(scope="session")
def demo_template(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> copies.DemoCopies:
    """The demo of ``demo_settings``, generated once per session (again if the hour changed)."""
    return copies.DemoCopies(tmp_path_factory.mktemp("demo"), sqlite_template)


@pytest.fixture
def demo_settings(migrated: Settings, demo_template: copies.DemoCopies) -> Settings:
    """Migrated settings whose log and database hold a small demo (600 pairs over 20 days,
    ending this hour; seed 5): the log the page tests look at. A private copy of the
    session's demo, so a test may write to it."""
    demo_template.copy_into(migrated)
    return migrated


# --- PostgreSQL --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """TEST_DATABASE_URL, checked reachable: the server where test databases are made."""
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
    admin.dispose()
    return admin_url


@pytest.fixture(scope="session")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """URL of a PostgreSQL database created for this test session (dropped afterwards)."""
    with copies.pg_database(pg_admin_url, "shadowtutor_test") as url:
        yield url


@pytest.fixture(scope="session")
def pg_migrated(pg_url: str) -> str:
    db.upgrade(pg_url)
    return pg_url


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """Name of a PostgreSQL database migrated to head once per session, to copy from (no
    connection stays open to it: PostgreSQL copies only a database nobody is connected to)."""
    with copies.pg_database(pg_admin_url, "shadowtutor_tmpl") as url:
        db.upgrade(url)
        db.dispose_engines(url)
        yield make_url(url).database or ""


@pytest.fixture
def pg_fresh(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    """URL of a PostgreSQL database at head for this test alone (``CREATE DATABASE ...
    TEMPLATE``, about 0.1 s); dropped after the test."""
    with copies.pg_database(pg_admin_url, "shadowtutor_t", template=pg_template) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database at head: a fresh SQLite file (a copy of the session's migrated template),
    or the session's PostgreSQL database."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        return copies.copy_sqlite(template, f"sqlite:///{tmp_path / 'store.db'}")
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


@pytest.fixture(scope="session")
def model_servers() -> Iterator[dict[tuple[str, str], Any]]:
    """The loopback servers of this session, one per distinct set of ModelServer arguments;
    ``teacher`` and ``student`` restore one before each test instead of starting a new one."""
    servers: dict[tuple[str, str], Any] = {}
    yield servers
    for srv in servers.values():
        srv.down()


def _server(request: pytest.FixtureRequest, name: str, default: dict[str, Any]) -> Any:
    from shadowtutor.testing.modelserver import ModelServer

    servers = request.getfixturevalue("model_servers")
    kwargs = getattr(request.module, name, default)
    key = (name, repr(sorted(kwargs.items())))
    srv = servers.get(key)
    if srv is None:
        srv = servers[key] = ModelServer(**kwargs)
    else:
        srv.restore()
    return srv


@pytest.fixture
def teacher(request: pytest.FixtureRequest) -> Any:
    """A loopback teacher (OpenAI protocol); a test module sets ``TEACHER = {...}`` (the
    ModelServer arguments) to change it. Default: gpt-4o-mini, echoing the prompt. Shared
    by the tests of the session, each getting it as constructed (switches off, no requests)."""
    return _server(request, "TEACHER", {"models": ["gpt-4o-mini"]})


@pytest.fixture
def student(request: pytest.FixtureRequest) -> Any:
    """A loopback student (Ollama protocol); a test module sets ``STUDENT = {...}``.
    Default: llama3, echoing the prompt. Shared and restored like ``teacher``."""
    return _server(request, "STUDENT", {"models": ["llama3"]})


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

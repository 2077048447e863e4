"""Migrations on SQLite and PostgreSQL: empty -> head, models agree, down one and up again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import shadowtutor.tables  # noqa: F401
from shadowtutor import db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    base = request.getfixturevalue("pg_url")  # a fresh database of this session
    name = f"{make_url(base).database}_m{abs(hash(request.node.name)) % 10_000}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    yield url
    db.get_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _diff(url: str) -> list:
    with db.get_engine(url).connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)


def test_empty_to_head_then_models_agree(empty_url: str) -> None:
    assert db.schema_status(empty_url).current is None
    db.upgrade(empty_url)
    assert db.schema_status(empty_url).ok
    assert _diff(empty_url) == []


def test_down_one_revision_and_up_again(empty_url: str) -> None:
    db.upgrade(empty_url)
    head = db.head_revision()
    db.downgrade(empty_url, "-1")
    status = db.schema_status(empty_url)
    assert status.current != head and not status.ok
    assert "shadowtutor db upgrade" in status.message()
    db.upgrade(empty_url)
    assert db.current_revision(empty_url) == head and _diff(empty_url) == []


def test_all_the_way_down_and_back(empty_url: str) -> None:
    db.upgrade(empty_url)
    db.downgrade(empty_url, "base")
    assert db.current_revision(empty_url) is None
    db.upgrade(empty_url)
    assert _diff(empty_url) == []

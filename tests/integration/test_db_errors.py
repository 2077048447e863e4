"""Database URLs and errors a user can cause (issue 12: 13, 14), on SQLite and PostgreSQL.

A plain ``postgresql://`` URL (what most hosts hand out) uses the installed driver; an
unreachable server, a wrong database or a nonsense URL is a one-line message naming the fix;
a pair id over 64 characters never reaches the database's VARCHAR(64) column.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from shadowtutor import db
from shadowtutor.accounts.permissions import SYSTEM
from shadowtutor.cli import main
from shadowtutor.config import Settings
from shadowtutor.log import read, schema, sql, write
from shadowtutor.review import workflow
from shadowtutor.tables import ReviewItem

LONG_ID = "imported-" + "x" * 61  # 70 characters


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def rec(i: int, **over: object) -> dict:
    r = schema.make_record(
        id=f"pair-{i}",
        ts=datetime(2025, 3, 1, 9, i, tzinfo=UTC),
        source="demo",
        messages=[{"role": "user", "content": f"Question {i}?"}],
        teacher={"model": "gpt-4o-mini", "response": f"Teacher {i}"},
        student={"model": "llama3", "response": f"Student {i}"},
        similarity={"method": "lexical", "score": 0.5},
    )
    r.update(over)
    return r


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- 14: URLs -----------------------------------------------------------------------------


def test_a_plain_postgresql_url_uses_the_installed_driver() -> None:
    assert db.engine_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg2://u:p@h:5432/d"
    assert db.engine_url("postgres://u@h/d") == "postgresql+psycopg2://u@h/d"
    assert db.engine_url("postgresql+pg8000://u@h/d") == "postgresql+pg8000://u@h/d"
    assert db.engine_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.postgres
def test_a_plain_postgresql_url_works_end_to_end(home: Path, pg_migrated: str, monkeypatch) -> None:
    plain = make_url(pg_migrated).set(drivername="postgresql").render_as_string(False)
    assert plain.startswith("postgresql://")
    with db.get_engine(plain).connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    monkeypatch.setenv("DATABASE_URL", plain)
    result = run("db", "status")
    assert result.exit_code == 0 and "at head" in result.output, result.output


def test_an_unreachable_database_is_a_clear_message(home: Path, monkeypatch) -> None:
    url = f"postgresql://ann:secret@127.0.0.1:{closed_port()}/shadow"
    monkeypatch.setenv("DATABASE_URL", url)
    result = run("review", "stats")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot use the database at postgresql://ann:***@127.0.0.1" in result.output
    assert "Check DATABASE_URL" in result.output and "secret" not in result.output


@pytest.mark.postgres
def test_a_missing_postgresql_database_is_a_clear_message(
    home: Path, pg_url: str, monkeypatch
) -> None:
    missing = make_url(pg_url).set(database="no_such_db_h7").render_as_string(False)
    monkeypatch.setenv("DATABASE_URL", missing)
    result = run("db", "upgrade")
    assert result.exit_code == 1 and "no_such_db_h7" in result.output
    assert "Check DATABASE_URL" in result.output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysqlx://u@h/d", "is not a database URL ShadowTutor can use"),
        ("not a url", "is not a database URL ShadowTutor can use"),
        ("postgresql+psycopg://u@h/d", "needs the Python package 'psycopg'"),
    ],
)
def test_a_bad_database_url_is_a_clear_message(home: Path, monkeypatch, url, says) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    result = run("db", "status")
    assert result.exit_code == 1 and says in result.output, result.output


# --- 13: ids over 64 characters -------------------------------------------------------------


def test_enqueue_never_sends_an_over_long_id_to_the_database(session: Session) -> None:
    result = workflow.enqueue_records(
        session=session, records=[rec(1), rec(2, id=LONG_ID)], enqueued_by=SYSTEM
    )
    assert (result.added, result.bad_ids) == (1, [LONG_ID])
    assert session.exec(select(ReviewItem.pair_id)).all() == ["pair-1"]


def write_old_parquet_part(log_dir: Path, records: list[dict]) -> None:
    """A Parquet part as an older version wrote it, without checking id lengths."""
    src = log_dir / "old.json"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text("".join(schema.dumps(r) + "\n" for r in records))
    out = read.parquet_root(log_dir) / "date=2025-03-01"
    out.mkdir(parents=True)
    duckdb.sql(
        f"COPY (SELECT * FROM {sql.read_json_sql([src])}) "
        f"TO '{out / 'part-old.parquet'}' (FORMAT parquet)"
    )
    src.unlink()


def _run_sql(url: str, statement: str) -> None:
    with db.session_scope(url) as s:
        s.execute(text(statement))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_cli_enqueue_with_an_over_long_id_in_the_log(
    home: Path, monkeypatch, request: pytest.FixtureRequest, backend: str
) -> None:
    if backend == "postgres":
        url = request.getfixturevalue("pg_migrated")
        monkeypatch.setenv("DATABASE_URL", url)
        forget = "DELETE FROM review_item WHERE pair_id LIKE 'pair-%'"  # the session's shared db
        with db.session_scope(url) as s:
            s.execute(text(forget))
        request.addfinalizer(lambda: _run_sql(url, forget))
    else:
        db.upgrade(Settings.load().db_url)
    log_dir = Settings.load().log_path
    write_old_parquet_part(log_dir, [rec(1), rec(2, id=LONG_ID)])
    with write.LogWriter(log_dir) as w:
        w.append(rec(3))
    with open(read.jsonl_files(log_dir)[0], "a") as fh:  # a raw line the view skips
        fh.write(schema.dumps(rec(4, id="y" * 65)) + "\n")
    result = run("review", "enqueue", "--size", "50")
    assert result.exit_code == 0, result.output
    assert "added 2 pairs" in result.output
    assert "skipped 1 pairs whose id is over 64 characters" in result.output
    assert "Traceback" not in result.output
    # and the importer refuses such ids, naming the line
    src = home / "long.jsonl"
    src.write_text(schema.dumps(rec(5, id=LONG_ID)) + "\n")
    out = run("logs", "import", str(src))
    assert out.exit_code == 1 and f"{src}:1: 'id' is 70 characters long" in out.output


def test_one_engine_per_url_however_it_is_asked_for(tmp_path) -> None:  # noqa: ANN001
    # get_engine(url) and session_scope's get_engine(url, None) were two pools for one
    # database: a listener on one never saw the other's statements
    url = f"sqlite:///{tmp_path / 'one.db'}"
    try:
        assert db.get_engine(url) is db.get_engine(url, None) is db.get_engine(url, timeout_s=None)
        assert db.get_engine(url, 2) is db.get_engine(url, 2.0)
        assert db.get_engine(url, 2) is not db.get_engine(url)
    finally:
        db.dispose_engines(url)


def test_a_session_on_an_unreachable_server_raises_a_clear_error(home: Path) -> None:
    """Issue 27 item 6: a review submitted while PostgreSQL restarted raised the driver's raw
    OperationalError; the library's error names the database and the fix."""
    url = f"postgresql://ann:secret@127.0.0.1:{closed_port()}/shadow"
    with pytest.raises(db.DatabaseError, match="cannot use the database at .*127.0.0.1") as err:
        with db.session_scope(url) as session:
            session.exec(select(ReviewItem)).first()
    assert "secret" not in str(err.value) and "DATABASE_URL" in str(err.value)

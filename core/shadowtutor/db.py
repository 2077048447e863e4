"""Engine, sessions and migrations.

``DATABASE_URL`` picks the database (SQLite file by default, PostgreSQL in production). The
schema is owned by Alembic (``migrations/``); :func:`upgrade` brings a database to head and
:func:`schema_status` tells whether a database is behind, which the app and CLI refuse.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

import shadowtutor.migrations
from shadowtutor.errors import ShadowTutorError

MIGRATIONS = Path(shadowtutor.migrations.__file__).resolve().parent


class SchemaError(ShadowTutorError, RuntimeError):
    """The database is not at the code's schema; the message names the command to run."""


class DatabaseError(ShadowTutorError, RuntimeError):
    """A database a user pointed ShadowTutor at that cannot be used; the message says why."""


# Drivers a bare `postgresql://` URL may use, in order of preference. SQLAlchemy 2.1 picks
# psycopg (v3) for it; the project installs psycopg2, so the installed one is taken.
_PG_DRIVERS = (("psycopg", "psycopg"), ("psycopg2", "psycopg2"), ("pg8000", "pg8000"))


def engine_url(url: str) -> str:
    """The URL with a driver SQLAlchemy can load: a plain ``postgresql://`` (or Heroku's
    ``postgres://``) URL uses whichever PostgreSQL driver is installed."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            for module, driver in _PG_DRIVERS:
                if importlib.util.find_spec(module) is not None:
                    return f"postgresql+{driver}://{rest}"
            return f"postgresql://{rest}"
    return url


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


def explain(exc: BaseException, url: str | None = None) -> str:
    """A one-line message for a database error a user can cause (unreachable server, wrong
    password, missing database, a value too long for its column), naming the fix."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    where = f" at {safe_url(url)}" if url else ""
    if isinstance(exc, sa_exc.DataError):
        return f"the database{where} refused a value ({first}); the data is too long or invalid"
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return (
            f"cannot use the database{where}: {first}. Check DATABASE_URL (host, port, user, "
            "password, database name) and that the server is running"
        )
    return f"database error{where}: {first}"


def get_engine(url: str, timeout_s: float | None = None) -> Engine:
    """The engine of ``url``; with ``timeout_s``, one whose connects and statements give up
    after about that long (PostgreSQL ``connect_timeout``, ``statement_timeout`` and
    ``tcp_user_timeout``; SQLite's busy ``timeout``), for reads that must not hang. One
    engine (one pool) per URL and timeout, however the arguments are passed."""
    key = (url, None if timeout_s is None else float(timeout_s))
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = _new_engine(*key)
        return engine


_ENGINES: dict[tuple[str, float | None], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def dispose_engines(url: str | None = None) -> None:
    """Close the pools of ``url``'s engines (every engine without a URL) and forget them."""
    with _ENGINES_LOCK:
        for key in [k for k in _ENGINES if url is None or k[0] == url]:
            _ENGINES.pop(key).dispose()


def _new_engine(url: str, timeout_s: float | None) -> Engine:
    try:
        return _create_engine(url, timeout_s)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as exc:
        raise DatabaseError(
            f"DATABASE_URL {safe_url(url)!r} is not a database URL ShadowTutor can use ({exc}); "
            "use sqlite:///path/to/file.db or postgresql://user:password@host:5432/dbname"
        ) from None
    except ModuleNotFoundError as exc:
        raise DatabaseError(
            f"DATABASE_URL {safe_url(url)!r} needs the Python package {exc.name!r}, which is not "
            "installed; install it, or write postgresql://... to use the installed driver"
        ) from None


def _timeout_args(url: str, timeout_s: float) -> dict[str, object]:
    """libpq's connection parameters that bound a connect, a statement (a lock wait included)
    and unacknowledged sends to about ``timeout_s``."""
    if url.startswith(("postgresql+psycopg2://", "postgresql+psycopg://")):
        ms = max(1, int(timeout_s * 1000))
        return {
            "connect_timeout": max(2, math.ceil(timeout_s)),  # libpq's minimum is 2 s
            "options": f"-c statement_timeout={ms} -c lock_timeout={ms}",
            "tcp_user_timeout": ms,
        }
    if url.startswith("postgresql+pg8000://"):
        return {"timeout": timeout_s}
    return {}


def _create_engine(url: str, timeout_s: float | None = None) -> Engine:
    url = engine_url(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        busy = 30 if timeout_s is None else timeout_s
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    if timeout_s is None:
        return create_engine(url, pool_pre_ping=True)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=1,
        max_overflow=1,
        pool_timeout=timeout_s,
        connect_args=_timeout_args(url, timeout_s),
    )


@contextmanager
def session_scope(url: str, timeout_s: float | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error (with ``timeout_s``: on the
    engine whose connects and statements give up after about that long)."""
    with Session(get_engine(url, timeout_s), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            # an unreachable or restarting server: a message naming the fix, not a driver's
            # traceback (nothing of the session was committed)
            _rollback_quietly(session)
            raise DatabaseError(explain(exc, url)) from exc
        except Exception:
            session.rollback()
            raise


def _rollback_quietly(session: Session) -> None:
    try:
        session.rollback()
    except sa_exc.SQLAlchemyError:  # the connection is gone: nothing to roll back on it
        pass


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def head_revision() -> str:
    """The newest migration shipped with this version (read from disk once per process: the
    app asks on every page run)."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise ShadowTutorError(f"no Alembic revision under {MIGRATIONS}")
    return head


def current_revision(url: str, timeout_s: float | None = None) -> str | None:
    with get_engine(url, timeout_s).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    cfg = alembic_config(url)
    with get_engine(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(url: str, revision: str) -> None:
    cfg = alembic_config(url)
    with get_engine(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def ok(self) -> bool:
        return self.current == self.head

    def message(self) -> str:
        if self.ok:
            return f"database schema is at head ({self.head})"
        where = "empty (no schema)" if self.current is None else f"at revision {self.current}"
        return (
            f"The database is {where} but this version of ShadowTutor needs revision "
            f"{self.head}. Run `shadowtutor db upgrade` to migrate it."
        )


def schema_status(url: str, timeout_s: float | None = None) -> SchemaStatus:
    return SchemaStatus(current=current_revision(url, timeout_s), head=head_revision())


def require_schema(url: str) -> None:
    status = schema_status(url)
    if not status.ok:
        raise SchemaError(status.message())

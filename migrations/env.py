"""Alembic environment: the URL comes from ShadowTutor's settings (or the caller's connection),
the target metadata from the SQLModel tables."""

from alembic import context
from sqlmodel import SQLModel

import shadowtutor.tables  # noqa: F401  (registers the tables)
from shadowtutor.config import get_settings

config = context.config
target_metadata = SQLModel.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    from shadowtutor.db import get_engine

    url = config.get_main_option("sqlalchemy.url") or get_settings().db_url
    with get_engine(url).connect() as conn:
        _run_with(conn)
        conn.commit()


def _run_with(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit(
        "offline (SQL script) migrations are not supported; run `shadowtutor db upgrade`"
    )
run()

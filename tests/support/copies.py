"""State built once per test session and copied per test: a migrated SQLite file, the small
demo (database and log folder), PostgreSQL databases made from a migrated template."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shadowtutor import db
from shadowtutor.config import Settings


def migrate_template(path: Path) -> Path:
    """Migrate a new SQLite file at ``path`` to head and close it, ready to be copied."""
    url = f"sqlite:///{path}"
    db.upgrade(url)
    db.dispose_engines(url)  # the last connection to close folds the WAL into the file
    return path


def copy_sqlite(template: Path, url: str) -> str:
    """Put a copy of the SQLite file ``template`` where ``url`` points; return ``url``."""
    target = Path(make_url(url).database or "")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return url


class DemoCopies:
    """The small demo (600 pairs over 20 days, seed 5) built once per hour, since it ends at
    the hour it is built, and copied into test homes."""

    def __init__(self, folder: Path, sqlite_template: Path) -> None:
        self.folder = folder
        self.sqlite_template = sqlite_template
        self.built: dict[datetime, Path] = {}

    def source(self) -> Path:
        from shadowtutor.demo import generate

        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        if end not in self.built:
            home = self.folder / end.strftime("%Y%m%d%H")
            url = copy_sqlite(self.sqlite_template, f"sqlite:///{home / 'store.db'}")
            generate.build(url=url, log_dir=home / "logs", pairs=600, days=20, seed=5, end=end)
            db.dispose_engines(url)
            self.built[end] = home
        return self.built[end]

    def copy_into(self, settings: Settings) -> None:
        """Give ``settings`` (SQLite, log folder) a private copy of the demo."""
        source = self.source()
        copy_sqlite(source / "store.db", settings.db_url)
        shutil.copytree(source / "logs", settings.log_path, dirs_exist_ok=True)


@contextmanager
def pg_database(admin_url: str, prefix: str, template: str | None = None) -> Iterator[str]:
    """A uniquely named PostgreSQL database (a copy of ``template`` when given); yields its
    URL and drops it, and only it, afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        db.dispose_engines(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

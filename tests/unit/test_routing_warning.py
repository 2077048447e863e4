"""Routing before `shadowtutor db upgrade`: one clear line, once, naming the command, and no
empty database file created by the attempt."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from shadowtutor.gate import routing


def _reads(url: str, times: int) -> None:
    for _ in range(times):  # as the background refresher does every REFRESH_SECONDS
        assert routing._read(url).stage == 0


@pytest.fixture(autouse=True)
def _fresh() -> None:
    routing._warned.clear()
    routing.clear_cache()


def test_missing_database_warns_once_and_is_not_created(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "home" / "shadowtutor.db"
    with caplog.at_level(logging.WARNING, logger=routing.log.name):
        _reads(f"sqlite:///{path}", 30)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "run `shadowtutor db upgrade`" in lines[0]
    assert not path.exists()


def test_unmigrated_database_warns_once_naming_the_command(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "shadowtutor.db"
    sqlite3.connect(path).close()  # an empty file, as the old code left behind
    with caplog.at_level(logging.WARNING, logger=routing.log.name):
        _reads(f"sqlite:///{path}", 30)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert "shadowtutor db upgrade" in lines[0] and "empty (no schema)" in lines[0]

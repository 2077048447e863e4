"""Fixtures of the unit tests: the hand-worked five-pair log (:mod:`tests.support.handlog`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowtutor.log import analytics
from tests.support import handlog


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """A log folder holding the five hand-worked pairs."""
    return handlog.write(tmp_path / "logs")


@pytest.fixture
def con(log_dir: Path):  # noqa: ANN201
    """A dashboards connection (``facts``) over that log, in UTC."""
    return analytics.connect(log_dir, "UTC")

"""Plain helpers of the table module: the time zone of stored times, the ids of saved rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shadowtutor.tables import Tag, as_utc, row_id


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        (datetime(2026, 1, 2, 3, 4), datetime(2026, 1, 2, 3, 4, tzinfo=UTC)),
        (
            datetime(2026, 1, 2, 5, 4, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        ),
    ],
)
def test_as_utc(given: datetime | None, expected: datetime | None) -> None:
    got = as_utc(given)
    assert got == expected
    assert got is None or got.tzinfo == UTC


def test_row_id_of_a_saved_row() -> None:
    assert row_id(Tag(id=7, name="tone", kind="style")) == 7


def test_row_id_before_the_insert_says_to_flush() -> None:
    with pytest.raises(ValueError, match="Tag has no id yet: flush the session first"):
        row_id(Tag(name="tone", kind="style"))

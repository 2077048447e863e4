"""Issue 27 item 10, reading the Review page: the pair's facts in one line with the time as
the app writes times, earlier turns folded, pairs inside the gate's window served first and
a pair outside it said to be so."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.config import Settings
from shadowtutor.log import schema
from shadowtutor.review import workflow
from shadowtutor.tables import ReviewItem
from shadowtutor.views import display
from tests.support.apputil import make_user, page_as

NOW = datetime.now(UTC)
PAGE = "pages/review.py"


def record(pair_id: str, ts: datetime, turns: int = 1) -> dict:
    messages: list[dict] = [{"role": "system", "content": "Be brief."}]
    for i in range(turns - 1):
        messages += [{"role": "user", "content": f"Earlier question {i}"},
                     {"role": "assistant", "content": f"Earlier answer {i}"}]  # fmt: skip
    messages.append({"role": "user", "content": "The question now"})
    return schema.make_record(
        id=pair_id,
        ts=ts,
        source="demo",
        category="chat",
        language="en",
        messages=messages,
        teacher={"model": "gpt-4o-mini", "response": "Teacher says", "latency_ms": 900},
        student={"model": "llama3", "response": "Student says", "latency_ms": 300},
        similarity={"method": "lexical", "score": 0.5},
    )


def enqueue(settings: Settings, *records: dict, priority: dict[str, float] | None = None) -> None:
    with db.session_scope(settings.db_url) as s:
        workflow.enqueue_records(session=s, records=list(records), enqueued_by=permissions.SYSTEM)
        for item in s.exec(select(ReviewItem)):
            item.priority = (priority or {}).get(item.pair_id, 0.0)
            s.add(item)


def test_the_time_reads_as_the_app_writes_times() -> None:
    assert display.moment("2026-12-07T01:31:59.290Z") == "2026-12-07 01:31 UTC"
    assert display.moment(None) == "n/a" and display.moment("yesterday") == "yesterday"


def test_the_header_is_one_line_and_earlier_turns_are_folded(migrated: Settings) -> None:
    ts = datetime(2026, 12, 6, 22, 5, tzinfo=UTC)
    enqueue(migrated, record("multi", max(ts, NOW - timedelta(days=1)), turns=3))
    at = page_as(PAGE, migrated.db_url, "reviewer").run()
    assert not at.exception, at.exception
    assert not at.metric  # five metrics took a fifth of the screen
    header = next(c.value for c in at.caption if c.value.startswith("Similarity"))
    logged = header.split("logged ")[1].split(" · ")[0].replace("\\", "")  # Markdown escapes
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", logged), logged  # not raw ISO
    assert "Earlier turns (4 messages)" in [e.label for e in at.expander]
    assert [h.value for h in at.subheader][:2] == ["Student", "Teacher"]


def test_the_queue_serves_pairs_inside_the_window_first(migrated: Settings) -> None:
    """Before: a pair 37 days old, first by priority, was served with no word."""
    old, new = record("old", NOW - timedelta(days=37)), record("new", NOW - timedelta(hours=2))
    enqueue(migrated, old, new, priority={"old": 9.0, "new": 1.0})
    at = page_as(PAGE, migrated.db_url, "reviewer").run()
    assert not at.exception, at.exception
    header = next(c.value for c in at.caption if c.value.startswith("Similarity"))
    assert "pair new" in header
    assert not at.warning


def test_a_pair_outside_the_window_says_its_review_will_not_count(migrated: Settings) -> None:
    enqueue(migrated, record("old", NOW - timedelta(days=37)))
    at = page_as(PAGE, migrated.db_url, "reviewer").run()
    assert not at.exception, at.exception
    (warning,) = [w.value for w in at.warning]
    assert "will not count toward the gate" in warning
    assert "evidence starts" in warning and " UTC" in warning


def test_claim_next_prefers_pairs_since_the_window_start(migrated: Settings) -> None:
    old, new = record("old", NOW - timedelta(days=37)), record("new", NOW - timedelta(hours=2))
    enqueue(migrated, old, new, priority={"old": 9.0, "new": 1.0})
    reviewer = make_user(migrated.db_url, "reviewer")
    with db.session_scope(migrated.db_url) as s:
        item = workflow.claim_next(
            session=s, reviewer_id=reviewer, prefer_since=NOW - timedelta(days=14)
        )
        assert item is not None and item.pair_id == "new"

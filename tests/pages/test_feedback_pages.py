"""Issue 30 on the pages: the admin fills the review queue with the pairs users disliked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from shadowtutor import db
from shadowtutor.collect.feedback import FeedbackDesk
from shadowtutor.config import Settings
from shadowtutor.log import schema
from shadowtutor.log.write import LogWriter
from shadowtutor.tables import ReviewItem
from tests.support.apputil import page_as


def test_admin_fills_the_queue_with_the_pairs_users_disliked(migrated: Settings) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    recs = [
        schema.make_record(
            ts=now,
            messages=[{"role": "user", "content": f"question {i}"}],
            teacher={"model": "gpt-4o-mini", "response": f"answer {i}"},
            student={"model": "llama3", "response": f"student {i}"},
            category="casual",
            language="en",
        )
        for i in range(6)
    ]
    with LogWriter(migrated.log_path) as writer:
        writer.append_many(recs)
    desk = FeedbackDesk(migrated.log_path)
    desk.take(
        [
            {"request_id": recs[1]["id"], "kind": "thumbs", "value": "down"},
            {"request_id": recs[4]["id"], "kind": "flag", "value": "made up a price"},
            {"request_id": recs[5]["id"], "kind": "thumbs", "value": "up"},
        ]
    )
    desk.close()
    at = page_as("pages/review_admin.py", migrated.db_url, "admin").run()
    assert any(o.startswith("negative_feedback: ") for o in at.selectbox[0].options)
    at.selectbox[0].set_value("negative_feedback")
    at.number_input[0].set_value(5)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "Added 2 pairs" in at.success[0].value
    with db.session_scope(migrated.db_url) as s:
        items = s.exec(select(ReviewItem)).all()
        assert sorted(i.pair_id for i in items) == sorted([recs[1]["id"], recs[4]["id"]])
        assert {i.strategy for i in items} == {"negative_feedback"}

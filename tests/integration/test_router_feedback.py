"""Users' feedback as the router's labels (issue 31): thumbs and ratings on answers the student
served become training examples, debiased against people's reviews of the same pairs (never
held out), and are left out, counted, until enough pairs have both."""

from __future__ import annotations

import random
from typing import Any

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.config import Settings
from shadowtutor.log import feedback, write
from shadowtutor.log.schema import DEFAULT_STUDENT, make_record
from shadowtutor.router import labels, schedule
from tests.support import reviewed
from tests.unit.test_gate import config

GOOD, BAD = "Your order moves to Friday.", "Sorry, I cannot help."


def _log(settings: Settings, n: int, n_reviewed: int) -> None:
    """``n`` business pairs the student served (the first ``n_reviewed`` also reviewed by
    people), one thumbs each agreeing with the answer, and one teacher-served pair with a
    thumbs (the user never saw the student's answer: no label)."""
    rng = random.Random(3)
    recs, oks = [], []
    for i in range(n):
        ok = rng.random() < 0.7
        recs.append(
            make_record(
                id=f"fb-{i}",
                category="business",
                language="en",
                messages=[{"role": "user", "content": f"change my order {rng.choice('abc')}"}],
                teacher={"model": "gpt-4o-mini", "response": "t"},
                student={"model": "llama3", "response": GOOD if ok else BAD},
                routing={"served_by": "student", "stage": 10, "bucket": 1.0, "eligible": True},
            )
        )
        oks.append(ok)
    recs.append(
        make_record(
            id="fb-teacher",
            category="business",
            messages=[{"role": "user", "content": "change my order"}],
            teacher={"model": "gpt-4o-mini", "response": "t"},
            student={"model": "llama3", "response": BAD},
            routing={"served_by": "teacher", "stage": 10, "bucket": 50.0, "eligible": True},
        )
    )
    with write.LogWriter(settings.log_path) as w:
        w.append_many(recs)
    events = [
        feedback.event({"request_id": r["id"], "kind": "thumbs", "value": "up" if ok else "down"})
        for r, ok in zip(recs, [*oks, True], strict=True)
    ]
    with write.LogWriter(settings.log_path, part=feedback.PART) as w:
        w.append_many(events)
    with db.session_scope(settings.db_url) as s:
        reviewed.review(s, recs[:n_reviewed], oks[:n_reviewed])


def test_feedback_on_served_answers_becomes_debiased_examples(migrated: Settings) -> None:
    _log(migrated, 240, n_reviewed=60)
    liked, records = schedule.feedback_verdicts(migrated, DEFAULT_STUDENT)
    assert len(liked) == 240 and "fb-teacher" not in liked  # only what the student served
    assert {r["id"] for r in records} == set(liked)
    row = schedule.train(migrated, config(), actor=permissions.SYSTEM, floor=0.6)
    counts: dict[str, Any] = row.counts
    assert counts["feedback_train"] == 180  # the 60 people reviewed are theirs
    assert counts["feedback"]["pairs_both"] == 60
    # people agreed with every thumbs here: up means acceptable almost surely, down not
    assert counts["feedback"]["q_if_acceptable"] > 0.9 > 0.1 > counts["feedback"]["q_if_not"]
    assert counts["human_held_out"] + counts["human_train"] == 60  # feedback is never held out


def test_feedback_is_left_out_below_enough_pairs_with_both(migrated: Settings) -> None:
    _log(migrated, 100, n_reviewed=labels.MIN_FEEDBACK_PAIRS - 1)
    row = schedule.train(migrated, config(), actor=permissions.SYSTEM, floor=0.6)
    assert row.counts["feedback_left_out"] == 100 - (labels.MIN_FEEDBACK_PAIRS - 1)
    assert "left out" in row.counts["feedback"]
    assert "feedback_train" not in row.counts

"""The guard on users' feedback in the rollout (shadowtutor/gate/rollout.py ``apply_guard``,
``blockers``; shadowtutor/gate/guard_evidence.py): WORSE rolls back at once with the evidence
as the reason, audited; the advance can require NO_WORSE; the counts come from the log's
``pairs`` joined to a ``feedback`` table; and ``evaluate`` runs it from a real log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from sqlmodel import Session

from shadowtutor import db
from shadowtutor.accounts.permissions import SYSTEM
from shadowtutor.gate import decisions, evaluate, evidence, guard, guard_evidence, rollout
from shadowtutor.gate.guard import ArmCounts, Arms
from shadowtutor.gate.rollout import RolloutError
from shadowtutor.log.schema import DEFAULT_STUDENT
from tests.support import guardlog
from tests.support.gatecases import config

BAD = Arms(  # 18 % thumbs down against 12 %
    ArmCounts(answers=10000, rated=5000, thumbs_down=900, regenerates=300, errors=20),
    ArmCounts(answers=90000, rated=45000, thumbs_down=5400, regenerates=2700, errors=180),
)
SAME = Arms(
    ArmCounts(answers=100000, rated=50000, thumbs_down=6000, regenerates=3000, errors=200),
    ArmCounts(answers=900000, rated=450000, thumbs_down=54000, regenerates=27000, errors=1800),
)


_rolled_out = guardlog.rolled_out


def test_worse_rolls_back_with_the_evidence_audited(session: Session) -> None:
    cfg = config()
    _rolled_out(session, cfg)
    fine = guard.assess(cfg, {"greeting": SAME}, student=DEFAULT_STUDENT)
    assert rollout.apply_guard(session=session, config=cfg, report=fine) is None
    other = guard.assess(cfg, {"greeting": BAD}, student="someone-else")
    assert rollout.apply_guard(session=session, config=cfg, report=other) is None
    assert rollout.state(session=session).stage == 10

    bad = guard.assess(cfg, {"greeting": BAD}, student=DEFAULT_STUDENT)
    ev = rollout.apply_guard(session=session, config=cfg, report=bad)
    assert ev is not None and ev.action == "auto_rollback" and ev.stage == 0
    assert ev.actor_id is None  # the operator (SYSTEM), through the permissions table
    assert ev.reason.startswith("users' feedback: the student's answers are worse")
    assert "greeting thumbs down: student 18.0 % vs teacher 12.0 %" in ev.reason
    stored = ev.details["guard"]["comparisons"][0]
    assert (stored["signal"], stored["outcome"], stored["student_n"]) == (
        "thumbs_down",
        "WORSE",
        5000,
    )
    assert rollout.state(session=session).stage == 0
    row = next(r for r in decisions.audit(session=session) if "automatically" in r.what)
    assert row.flagged and row.what == "rolled back automatically from 10% to 0%"
    assert "greeting thumbs down" in row.detail and "1-point margin" in row.detail
    # at 0 % there is nothing more to roll back
    assert rollout.apply_guard(session=session, config=cfg, report=bad) is None


def test_rollback_can_be_switched_off(session: Session) -> None:
    cfg = config(guard={"rollback": False})
    _rolled_out(session, cfg)
    bad = guard.assess(cfg, {"greeting": BAD}, student=DEFAULT_STUDENT)
    assert rollout.apply_guard(session=session, config=cfg, report=bad) is None
    assert rollout.state(session=session).stage == 10


def test_worse_feedback_blocks_advancing(session: Session) -> None:
    cfg = config()
    admin = _rolled_out(session, cfg)
    later = datetime.now(UTC) + timedelta(hours=25)
    bad = guard.assess(cfg, {"greeting": BAD}, student=DEFAULT_STUDENT)
    with pytest.raises(RolloutError, match="worse than the teacher's in greeting"):
        rollout.advance(
            session=session, config=cfg, actor_id=admin, served_at_stage=5000, now=later,
            feedback=bad,
        )  # fmt: skip
    assert rollout.state(session=session).stage == 10


def test_advance_can_require_no_worse(session: Session) -> None:
    cfg = config(guard={"require_no_worse": True})
    admin = _rolled_out(session, cfg)
    later = datetime.now(UTC) + timedelta(hours=25)
    undecided = guard.assess(cfg, {"greeting": Arms()}, student=DEFAULT_STUDENT)
    for feedback, words in ((None, "was not compared"), (undecided, "not yet shown no worse")):
        problems = rollout.blockers(
            session=session, config=cfg, served_at_stage=5000, now=later, feedback=feedback
        )
        assert any(words in p for p in problems), problems
    fine = guard.assess(cfg, {"greeting": SAME}, student=DEFAULT_STUDENT)
    ev = rollout.advance(
        session=session, config=cfg, actor_id=admin, served_at_stage=5000, now=later,
        feedback=fine,
    )  # fmt: skip
    assert ev.stage == 25
    # Not required (the shipped default): an undecided comparison blocks nothing.
    assert not any(
        "feedback" in p
        for p in rollout.blockers(
            session=session, config=config(), served_at_stage=5000, now=later + timedelta(hours=49),
            feedback=undecided,
        )
    )  # fmt: skip


# --- counts from DuckDB --------------------------------------------------------------------


def _tables(con: duckdb.DuckDBPyConnection, with_feedback: bool = True) -> None:
    """A small ``pairs`` table (the columns the guard reads) and a ``feedback`` table."""
    con.execute(
        "CREATE TABLE pairs (request_id VARCHAR, category VARCHAR, student_name VARCHAR, "
        "served_by VARCHAR, stage DOUBLE, bucket DOUBLE, eligible BOOLEAN, request_kind VARCHAR, "
        "student_error VARCHAR, teacher_error VARCHAR, ts TIMESTAMP)"
    )
    rows = [
        # request, category, served_by, stage, bucket, eligible, kind, student error
        ("r1", "greeting", "student", 10, 3, True, "plain", None),
        ("r2", "greeting", "student", 10, 7, True, "plain", "HTTP 500"),  # the user saw an error
        # the student timed out and the teacher answered: the student's arm, no error seen
        ("r3", "greeting", "teacher", 10, 7, True, "plain", "timeout"),
        ("r4", "greeting", "teacher", 10, 50, True, "plain", None),
        ("r5", "greeting", "teacher", 10, 80, True, "plain", None),
        ("r6", "greeting", "teacher", 10, 90, True, "tools", None),  # another kind: outside
        ("r7", "greeting", "teacher", 0, 5, True, "plain", None),  # at 0 %: outside
        ("r8", "greeting", "teacher", 10, None, True, "plain", None),  # no user key: outside
        ("r9", "casual", "teacher", 10, 60, True, "plain", None),
        ("r10", "greeting", "student", 25, 20, True, "plain", None),  # a later stage
    ]
    con.executemany(
        "INSERT INTO pairs VALUES (?, ?, 'default', ?, ?, ?, ?, ?, ?, NULL, "
        "TIMESTAMP '2026-12-05 10:00:00')",
        [list(r) for r in rows],
    )
    if not with_feedback:
        return
    con.execute(
        "CREATE TABLE feedback (request_id VARCHAR, kind VARCHAR, value VARCHAR, "
        "ts TIMESTAMP, source VARCHAR)"
    )
    con.executemany(
        "INSERT INTO feedback VALUES (?, ?, ?, ?, 'app')",
        [
            ("r1", "thumbs", "up", "2026-12-05 10:01:00"),
            ("r1", "thumbs", "down", "2026-12-05 10:02:00"),  # the newest thumb counts
            ("r2", "thumbs", "up", "2026-12-05 10:01:00"),
            ("r2", "regenerate", None, "2026-12-05 10:01:00"),
            ("r2", "regenerate", None, "2026-12-05 10:03:00"),  # counted once
            ("r4", "thumbs", "-1", "2026-12-05 10:01:00"),
            ("r5", "rating", "2", "2026-12-05 10:01:00"),  # a rating is not a thumb
            ("r6", "thumbs", "down", "2026-12-05 10:01:00"),
            ("unknown", "thumbs", "down", "2026-12-05 10:01:00"),
        ],
    )


def test_counts_from_pairs_joined_to_feedback() -> None:
    con = duckdb.connect()
    _tables(con)
    assert guard_evidence.has_feedback(con) and guard_evidence.feedback_events(con) == 9
    got = guard_evidence.counts(con, datetime(2026, 12, 1, tzinfo=UTC))
    at_10 = Arms(
        ArmCounts(answers=3, rated=2, thumbs_down=1, regenerates=1, errors=1),
        ArmCounts(answers=2, rated=1, thumbs_down=1, regenerates=0, errors=0),
    )
    assert got["greeting"] == (at_10, Arms(ArmCounts(answers=1), ArmCounts()))  # per stage
    assert guard.pooled(got["greeting"]).student.answers == 4
    assert got["casual"] == (Arms(ArmCounts(), ArmCounts(answers=1)),)
    assert guard_evidence.counts(con, datetime(2026, 12, 6, tzinfo=UTC)) == {}


def test_counts_without_feedback_still_count_answers_and_errors() -> None:
    con = duckdb.connect()
    _tables(con, with_feedback=False)
    assert not guard_evidence.has_feedback(con) and guard_evidence.feedback_events(con) == 0
    got = guard_evidence.counts(con, datetime(2026, 12, 1, tzinfo=UTC))
    assert got["greeting"][0].student == ArmCounts(answers=3, errors=1)


# --- evaluate, from a real log ---------------------------------------------------------------


def test_evaluate_rolls_back_on_the_students_errors(migrated) -> None:  # noqa: ANN001
    """At 10 %, the student's arm fails 8 % of its requests and the teacher's 0.6 %: the
    gate's own decision rolls nothing back, the guard does, with the error signal's
    evidence as the reason."""
    now = datetime.now(UTC)
    cfg = config()
    guardlog.write_rollout(migrated, cfg)
    result = evaluate.evaluate(migrated, cfg, actor_id=SYSTEM, now=now)
    assert result.feedback is not None
    errors = next(c for c in result.feedback.comparisons if c.signal == "error")
    assert (errors.student_n, errors.teacher_n) == (600, 5400)
    assert errors.outcome == guard.WORSE
    assert result.rollback is not None and "greeting errors: student 8.3 % vs teacher 0.6 %" in (
        result.rollback
    )
    with db.session_scope(migrated.db_url) as session:
        assert rollout.state(session=session).stage == 0
        assert rollout.history(session=session)[0].action == "auto_rollback"


def test_thumbs_written_by_the_feedback_desk_are_counted_by_the_guard(migrated) -> None:  # noqa: ANN001
    """The feedback room stores a thumb as 1 / -1 (a double): the guard reads those records
    from the log's own ``feedback`` view and counts the downs (it compared '-1.0' with '-1'
    and found none)."""
    from shadowtutor.log import feedback, write

    cfg = config()
    guardlog.write_rollout(migrated, cfg, requests=400)
    con = evidence.connect(migrated.log_path)
    ids = [r[0] for r in con.execute("SELECT request_id FROM pairs ORDER BY request_id").fetchall()]
    events = [
        feedback.event({"request_id": rid, "kind": "thumbs", "value": "down" if i % 4 else "up"})
        for i, rid in enumerate(ids[:40])
    ]
    with write.LogWriter(migrated.log_path, part=feedback.PART) as w:
        w.append_many(events)
    con = evidence.connect(migrated.log_path)
    got = guard.pooled(
        guard_evidence.counts(con, datetime.now(UTC) - timedelta(days=1))["greeting"]
    )
    rated = got.student.rated + got.teacher.rated
    down = got.student.thumbs_down + got.teacher.thumbs_down
    assert (rated, down) == (40, 30)

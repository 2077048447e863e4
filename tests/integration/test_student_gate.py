"""Per-student gate decisions, approvals and rollout (SQLite and PostgreSQL): each decision
names its student, only an approved GO for a student rolls that student out, only one student
serves at a time, routing names it, and a decision about another student rolls nothing back.
Then the gate's evidence narrowed to one student's records and reviews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from shadowtutor import db, users
from shadowtutor.auth import SYSTEM
from shadowtutor.config import Settings
from shadowtutor.gate import criteria as gate
from shadowtutor.gate import decisions, evaluate, evidence, rollout, routing
from shadowtutor.gate.criteria import Window
from shadowtutor.gate.rollout import RolloutError
from shadowtutor.log import schema
from shadowtutor.log.write import LogWriter
from shadowtutor.tables import UserCreate
from tests.support.gatecases import agg, config


def _admin(session: Session) -> int:
    return users.add_user(
        session=session,
        user=UserCreate(username="admin-s", role="admin", password="password-s"),
        actor_id=SYSTEM,
    ).id


def _decision(session: Session, student: str | None, **kw: object):
    return decisions.record(
        session=session,
        decision=gate.decide(config(), Window(None, None, {"greeting": agg(**kw)})),
        actor_id=SYSTEM,
        student=student,
    )


def test_each_student_has_its_own_decisions_and_approval(session: Session) -> None:
    admin = _admin(session)
    a = _decision(session, "llama")
    b = _decision(session, "qwen", fail=1)
    assert (a.student, b.student) == ("llama", "qwen")
    assert decisions.latest(session=session, student="llama").id == a.id
    assert decisions.latest(session=session).id == b.id  # newest of all
    decisions.approve(session=session, decision_id=a.id, actor_id=admin)  # not stale: its own
    assert decisions.approval(session=session, student="llama").approved
    assert not decisions.approval(session=session, student="qwen").approved
    assert decisions.student_of(_decision(session, None)) == "default"


def test_only_the_approved_student_serves_and_only_one_at_a_time(session: Session) -> None:
    cfg = config()
    admin = _admin(session)
    a = _decision(session, "llama")
    decisions.approve(session=session, decision_id=a.id, actor_id=admin)
    with pytest.raises(RolloutError, match="qwen.*is not approved|no decision yet"):
        rollout.advance(
            session=session, config=cfg, actor_id=admin, served_at_stage=0, student="qwen"
        )
    ev = rollout.advance(
        session=session, config=cfg, actor_id=admin, served_at_stage=0, student="llama"
    )
    assert ev.details["student"] == "llama" and rollout.state(session=session).student == "llama"
    snap = rollout.state(session=session)
    r = routing.decide(
        stage=snap.stage,
        categories=frozenset(snap.categories),
        salt=snap.salt,
        key="user-3",
        category="greeting",
        student=snap.student,
    )
    assert r.student == "llama"
    b = _decision(session, "qwen")
    decisions.approve(session=session, decision_id=b.id, actor_id=admin)
    later = datetime.now(UTC) + timedelta(hours=30)
    with pytest.raises(RolloutError, match="student llama serves 10% now; only one student"):
        rollout.advance(
            session=session,
            config=cfg,
            actor_id=admin,
            served_at_stage=9999,
            now=later,
            student="qwen",
        )
    # a critical NO-GO about qwen (not serving) rolls nothing back; one about llama does
    bad_b = _decision(session, "qwen", critical=1)
    assert rollout.apply_decision(session=session, config=cfg, decision=bad_b) is None
    bad_a = _decision(session, "llama", critical=1)
    back = rollout.apply_decision(session=session, config=cfg, decision=bad_a)
    assert back is not None and back.stage == 0
    # the kill/rollback events keep the student; at 0% qwen may now be rolled out
    assert rollout.state(session=session).student == "llama"


def _pair(i: int, name: str, ok: bool, primary: bool) -> dict:
    rid = f"r-{i}"
    return schema.make_record(
        id=rid if primary else schema.secondary_id(rid, name),
        ts=datetime.now(UTC) - timedelta(hours=2),
        category="greeting",
        messages=[{"role": "user", "content": f"hi {i}"}],
        teacher={"model": "gpt-4o-mini", "response": "hello"},
        student={"model": name, "response": "hello" if ok else None,
                 "error": None if ok else "unavailable: 500"},
        similarity={"method": "lexical", "score": 0.9 if ok else None},
        request_id=rid,
        student_name=name,
    )  # fmt: skip


def test_evidence_for_one_student_counts_its_records_only(tmp_path: Path) -> None:
    s = Settings.load({"SHADOWTUTOR_HOME": str(tmp_path / "home")})
    db.upgrade(s.db_url)
    with LogWriter(s.log_path) as w:
        w.append_many(
            [_pair(i, "good", True, True) for i in range(30)]
            + [_pair(i, "bad", False, False) for i in range(30)]
        )
    now = datetime.now(UTC)
    good = evidence.gather(s, config(), now, "good").categories["greeting"]
    bad = evidence.gather(s, config(), now, "bad").categories["greeting"]
    assert (good.pairs, good.successes) == (30, 30)
    assert (bad.pairs, bad.successes) == (30, 0)
    result = evaluate.evaluate(s, config(), actor_id=SYSTEM, now=now, student="bad")
    with db.session_scope(s.db_url) as session:
        row = decisions.latest(session=session)
        assert row.id == result.decision_id and row.student == "bad"

"""A rollout at 10 % in the log and the database, for the guard's tests: requests split by
bucket between the student's arm (buckets 0-9) and the teacher's, the student's failing 8 %
of the time and the teacher's 0.6 %."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from shadowtutor import db
from shadowtutor.accounts.permissions import SYSTEM
from shadowtutor.config import Settings
from shadowtutor.gate import criteria, decisions, rollout
from shadowtutor.gate.criteria import Window
from shadowtutor.log import schema, write
from tests.support.gatecases import account, agg


def rolled_out(session: Session, cfg: criteria.GateConfig) -> int:
    """An approved GO for greeting and the rollout at 10 %; the admin's id."""
    admin = account(session, "admin")
    d = decisions.record(
        session=session,
        decision=criteria.decide(cfg, Window(None, None, {"greeting": agg()})),
        actor_id=SYSTEM,
    )
    decisions.approve(session=session, decision_id=d.id, actor_id=admin)
    rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=0)
    return admin


def write_rollout(settings: Settings, cfg: criteria.GateConfig, requests: int = 6000) -> None:
    """The rollout at 10 % (database) and ``requests`` greeting requests of the last ten
    hours at that stage (log)."""
    with db.session_scope(settings.db_url) as session:
        rolled_out(session, cfg)
        session.commit()
    now = datetime.now(UTC)
    records = []
    for i in range(requests):
        bucket = i % 100
        arm = "student" if bucket < 10 else "teacher"
        failed = (i // 100) % 12 == 0 if arm == "student" else i % 200 == 199
        error = "HTTP 500" if failed else None
        records.append(
            schema.make_record(
                messages=[{"role": "user", "content": f"ciao {i}"}],
                teacher={"model": "gpt-4o", "response": None if failed and arm == "teacher"
                         else "Ciao!", "error": error if arm == "teacher" else None},
                student={"model": "llama3", "response": None if error else "Ciao",
                         "error": error if arm == "student" else None},
                ts=now - timedelta(minutes=1 + i % 600),
                category="greeting",
                routing={"served_by": arm, "stage": 10, "bucket": bucket, "eligible": True},
            )
        )  # fmt: skip
    with write.LogWriter(settings.log_path) as w:
        w.append_many(records)

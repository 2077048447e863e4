"""Gate decisions store (shadowtutor/gate/decisions.py), directly: recording and reading decisions,
the chain of decisions made from the same evidence, which categories an override may release,
the approval state and its wording, the refusals of approve / override / revoke, and the audit
trail. The role checks are covered with the other permission tests (test_gate, test_rollout);
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from shadowtutor.gate import criteria, decisions
from shadowtutor.gate.criteria import GO, NO_GO
from shadowtutor.gate.decisions import DecisionError
from shadowtutor.gate.outcomes import FAIL, INCONCLUSIVE, PASS
from shadowtutor.tables import GateDecision, GateEvent, RolloutEvent
from tests.support.gatecases import account, agg, config, recorded

REASON = "a known network blip in one region, fixed on Monday"


def _criteria(*rows: tuple[str, str]) -> dict:
    return {"criteria": [{"category": cat, "status": status} for cat, status in rows]}


def test_record_keeps_the_decision_and_latest_is_the_newest(session: Session) -> None:
    assert decisions.latest(session=session) is None
    assert decisions.history(session=session) == []
    admin = account(session, "admin")
    d = criteria.decide(config(), criteria.Window(None, None, {"greeting": agg()}))
    first = decisions.record(session=session, decision=d, actor_id=admin)
    second = recorded(session, agg(pairs=10))
    assert decisions.latest(session=session).id == second.id
    assert [r.id for r in decisions.history(session=session)] == [second.id, first.id]
    assert [r.id for r in decisions.history(session=session, limit=1)] == [second.id]
    session.expire_all()
    back = session.get(GateDecision, first.id)
    assert (back.outcome, back.created_by) == (GO, admin)
    assert (back.config_hash, back.data_fingerprint) == (d.config_hash, d.data_fingerprint)
    assert back.evidence == d.evidence()


def test_current_chain_is_the_run_of_same_evidence(session: Session) -> None:
    assert decisions.current_chain(session=session) == []
    a1 = recorded(session, agg())
    a2 = recorded(session, agg())
    assert [d.id for d in decisions.current_chain(session=session)] == [a2.id, a1.id]
    b1 = recorded(session, agg(fail=1))  # new data
    assert [d.id for d in decisions.current_chain(session=session)] == [b1.id]
    a3 = recorded(session, agg())  # the old data again: a new chain, the old one is not joined
    assert [d.id for d in decisions.current_chain(session=session)] == [a3.id]


@pytest.mark.parametrize(
    ("evidence", "released"),
    [
        (_criteria(("greeting", PASS), ("greeting", FAIL)), ["greeting"]),
        (_criteria(("greeting", PASS), ("greeting", PASS)), []),  # nothing failed
        (_criteria(("greeting", FAIL), ("greeting", INCONCLUSIVE)), []),  # data still missing
        (_criteria(("all", FAIL), ("casual", FAIL), ("greeting", PASS)), ["casual"]),
        ({}, []),
    ],
)
def test_override_categories(evidence: dict, released: list[str]) -> None:
    assert decisions.override_categories(evidence) == released


def test_approval_state_and_its_wording(session: Session) -> None:
    admin = account(session, "admin")
    empty = decisions.approval(session=session)
    assert (empty.decision, empty.approved, empty.categories) == (None, False, ())
    assert empty.describe() == "no decision yet: evaluate the gate first"
    go = recorded(session, agg())
    waiting = decisions.approval(session=session)
    assert not waiting.approved and waiting.event is None
    assert waiting.describe() == f"decision #{go.id} (GO) is not approved"
    event = decisions.approve(session=session, decision_id=go.id, actor_id=admin)
    assert (event.kind, event.actor_id, event.reason) == ("approve", admin, "")
    done = decisions.approval(session=session)
    assert (done.approved, done.kind, done.categories) == (True, "approve", ("greeting",))
    assert done.describe() == f"decision #{go.id} approved for greeting"
    decisions.revoke(session=session, decision_id=go.id, actor_id=admin, reason="  wait  ")
    revoked = decisions.approval(session=session)
    assert not revoked.approved and revoked.event.kind == "revoke"
    assert revoked.event.reason == "wait"


def test_refusals_name_what_to_do(session: Session) -> None:
    admin = account(session, "admin")
    with pytest.raises(DecisionError, match="no gate decision #999"):
        decisions.approve(session=session, decision_id=999, actor_id=admin)
    failed = recorded(session, agg(pairs=3000, fail=100))  # 3.3 % failed: success fails, P95 passes
    assert failed.outcome == NO_GO
    with pytest.raises(DecisionError, match=f"#{failed.id} is NO-GO, not GO: an admin may"):
        decisions.approve(session=session, decision_id=failed.id, actor_id=admin)
    with pytest.raises(DecisionError, match=f"at least {decisions.MIN_REASON} characters"):
        decisions.override(
            session=session, decision_id=failed.id, actor_id=admin, reason=" " * 20 + "short"
        )
    # Failed on errors, and too few reviews to judge the rest: nothing can be released yet.
    half = recorded(session, agg(fail=100, scores={5: 3}))  # fewer than min_reviews
    assert half.outcome == NO_GO and not decisions.override_categories(half.evidence)
    with pytest.raises(DecisionError, match="no category can be released"):
        decisions.override(session=session, decision_id=half.id, actor_id=admin, reason=REASON)
    with pytest.raises(DecisionError, match=f"#{failed.id} is stale: decision #{half.id}"):
        decisions.revoke(session=session, decision_id=failed.id, actor_id=admin, reason="x")
    assert session.exec(select(GateEvent)).all() == []  # nothing was written by a refusal


def test_override_releases_the_failed_categories(session: Session) -> None:
    admin = account(session, "admin")
    failed = recorded(session, agg(pairs=3000, fail=100))  # 3.3 % failed: success fails, P95 passes
    event = decisions.override(
        session=session, decision_id=failed.id, actor_id=admin, reason=f"  {REASON}  "
    )
    assert (event.kind, event.reason, event.decision_id) == ("override", REASON, failed.id)
    state = decisions.approval(session=session)
    assert (state.approved, state.kind, state.categories) == (True, "override", ("greeting",))
    assert state.describe().endswith("approved (OVERRIDE of a failed gate) for greeting")


def test_audit_trail_is_newest_first_with_names_and_flags(session: Session) -> None:
    admin = account(session, "admin")
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    failed = recorded(session, agg(fail=100))  # recorded now: the newest of all rows below
    session.add(
        GateEvent(
            decision_id=failed.id, kind="override", actor_id=admin, reason=REASON, created_at=t
        )
    )
    session.add(
        RolloutEvent(
            action="advance",
            stage=10,
            actor_id=admin,
            reason="approved GO",
            details={"categories": ["greeting"]},
            created_at=t + timedelta(hours=1),
        )
    )
    session.add(
        RolloutEvent(
            action="kill",
            stage=10,
            killed=True,
            actor_id=None,
            reason="outage",
            created_at=t + timedelta(hours=2),
        )
    )
    session.flush()
    rows = decisions.audit(session=session)
    assert [r.what for r in rows] == [
        f"decision #{failed.id}: NO-GO",
        "kill switch pulled by system/CLI: outage; the teacher serves every request",
        "rollout advanced by admin-x to 10%",
        f"override decision #{failed.id}",
    ]
    assert [r.who for r in rows] == ["system/CLI", "system/CLI", "admin-x", "admin-x"]
    assert [r.flagged for r in rows] == [False, True, False, True]
    assert rows[2].detail == "approved GO; categories: greeting"
    assert rows[0].detail.startswith("NO-GO: greeting success rate failed.")
    assert rows[0].detail.endswith(f"data {failed.data_fingerprint[:8]}]")
    assert len(decisions.audit(session=session, limit=2)) == 2

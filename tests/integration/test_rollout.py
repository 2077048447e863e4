"""Routing (stable, monotone, right share), rollout stages, rollback rules, stale approvals,
and the kill switch reaching a running proxy-like loop."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from shadowtutor import db
from shadowtutor.accounts import users
from shadowtutor.accounts.permissions import SYSTEM, PermissionDenied
from shadowtutor.gate import criteria, decisions, killswitch, rollout, routing
from shadowtutor.gate.criteria import Window
from shadowtutor.gate.rollout import RolloutError
from shadowtutor.tables import GateDecision, RolloutEvent, UserCreate, utcnow
from tests.support.gatecases import agg, config

CATS = frozenset({"greeting", "casual"})
KEYS = [f"user-{i}" for i in range(20000)]


# --- routing rule (pure) -----------------------------------------------------------------


def _route(stage: int, key: str | None, category: str | None = "greeting", salt: str = "s1"):
    return routing.decide(stage=stage, categories=CATS, salt=salt, key=key, category=category)


def test_bucket_is_stable_and_salted() -> None:
    assert routing.bucket_of("alice", "s1") == routing.bucket_of("alice", "s1")
    assert routing.bucket_of("alice", "s1") != routing.bucket_of("alice", "s2")
    assert all(0 <= routing.bucket_of(k, "s1") < 100 for k in KEYS[:1000])
    assert [_route(25, k).served_by for k in KEYS[:500]] == [
        _route(25, k).served_by for k in KEYS[:500]
    ]


def test_routing_is_monotone_across_stages() -> None:
    for low, high in [(10, 25), (25, 50), (50, 100)]:
        for key in KEYS[:5000]:
            if _route(low, key).served_by == "student":
                assert _route(high, key).served_by == "student", key


@pytest.mark.parametrize("stage", [0, 10, 25, 50, 100])
def test_share_is_close_to_the_stage(stage: int) -> None:
    share = sum(_route(stage, k).served_by == "student" for k in KEYS) / len(KEYS) * 100
    assert abs(share - stage) <= 1.0  # 20,000 keys: the standard error is at most 0.35 points


@pytest.mark.parametrize(
    ("key", "category", "served_by", "eligible"),
    [
        ("user-1", "business", "teacher", False),  # category not released
        ("user-1", None, "teacher", False),
        (None, "greeting", "teacher", True),  # no id: cannot keep the user stable, so teacher
        ("user-1", "greeting", "student", True),
    ],
)
def test_eligibility_and_missing_keys(
    key: str | None, category: str | None, served_by: str, eligible: bool
) -> None:
    r = _route(100, key, category)
    assert (r.served_by, r.eligible, r.stage) == (served_by, eligible, 100)


# --- rollout store (SQLite and PostgreSQL) -----------------------------------------------


def _admin(session: Session, role: str = "admin") -> int:
    u = users.add_user(
        session=session,
        user=UserCreate(username=f"{role}-r", role=role, password="password-r"),
        actor_id=SYSTEM,
    )
    return u.id


def _approved_go(session: Session, admin: int, **kw: object) -> int:
    d = decisions.record(
        session=session,
        decision=criteria.decide(config(), Window(None, None, {"greeting": agg(**kw)})),
        actor_id=SYSTEM,
    )
    decisions.approve(session=session, decision_id=d.id, actor_id=admin)
    return d.id


def test_full_rollout_needs_approval_requests_and_time(session: Session) -> None:
    cfg = config()
    admin = _admin(session)
    with pytest.raises(RolloutError, match="no decision yet"):
        rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=0)
    _approved_go(session, admin)
    ev = rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=0)
    state = rollout.state(session=session)
    assert (ev.stage, state.stage, state.categories, state.salt) == (
        10,
        10,
        ("greeting",),
        cfg.salt,
    )
    with pytest.raises(RolloutError, match=r"more requests served .* more hours at 10%"):
        rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=5)
    later = utcnow() + timedelta(hours=25)
    for stage in (25, 50, 100):
        ev = rollout.advance(
            session=session, config=cfg, actor_id=admin, served_at_stage=5000, now=later
        )
        assert ev.stage == stage
        later += timedelta(hours=49)
    problems = rollout.blockers(session=session, config=cfg, served_at_stage=5000, now=later)
    assert any("last stage" in p for p in problems)
    actions = [e.action for e in rollout.history(session=session)]
    assert actions == ["advance"] * 4


def test_roles_are_checked_on_rollout_actions(session: Session) -> None:
    admin, manager = _admin(session), _admin(session, "manager")
    _approved_go(session, admin)
    for act in (
        lambda: rollout.advance(
            session=session, config=config(), actor_id=manager, served_at_stage=0
        ),
        lambda: rollout.rollback(session=session, actor_id=manager, reason="no"),
        lambda: rollout.set_kill(session=session, actor_id=manager, on=True),
    ):
        with pytest.raises(PermissionDenied, match="manager-r is a manager; only admins may"):
            act()
    assert rollout.history(session=session) == []


def test_no_automatic_re_promotion_after_rollback(session: Session) -> None:
    cfg = config()
    admin = _admin(session)
    _approved_go(session, admin)
    rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=0)
    rollout.rollback(session=session, actor_id=admin, reason="complaints from users")
    assert rollout.state(session=session).stage == 0
    # The old approval still exists, but it predates the rollback.
    with pytest.raises(RolloutError, match="no automatic re-promotion"):
        rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=0)
    time.sleep(0.01)
    _approved_go(session, admin, fail=1)  # a new decision, approved again
    assert (
        rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=0).stage == 10
    )


def _critical_at_10(session: Session, cfg: criteria.GateConfig) -> GateDecision:
    """A rollout at 10 % and a recorded decision with a critical failure."""
    admin = _admin(session)
    _approved_go(session, admin)
    rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=0)
    return decisions.record(
        session=session,
        decision=criteria.decide(cfg, Window(None, None, {"greeting": agg(critical=1)})),
        actor_id=SYSTEM,
    )


def test_critical_failure_rolls_back_at_once(session: Session) -> None:
    cfg = config()
    bad = _critical_at_10(session, cfg)
    ev = rollout.apply_decision(session=session, config=cfg, decision=bad)
    assert ev is not None and ev.action == "auto_rollback" and ev.stage == 0
    assert "critical" in ev.reason and rollout.state(session=session).stage == 0


def test_the_automatic_rollback_is_checked_by_the_permission_table(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write is checked by the one table, the automatic ones too: the decision's
    rollback acts as the operator's ``rollout.kill`` (it wrote with no check at all)."""
    import dataclasses

    from shadowtutor.accounts import permissions

    cfg = config()
    bad = _critical_at_10(session, cfg)
    kill = permissions.ACTIONS["rollout.kill"]
    monkeypatch.setitem(
        permissions.ACTIONS, "rollout.kill", dataclasses.replace(kill, operator=False)
    )
    with pytest.raises(permissions.PermissionDenied):
        rollout.apply_decision(session=session, config=cfg, decision=bad)
    assert rollout.state(session=session).stage == 10  # nothing written


def test_k_failed_evaluations_in_a_row_roll_back(session: Session) -> None:
    cfg = config()  # failures_to_rollback = 3
    admin = _admin(session)
    _approved_go(session, admin)
    rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=0)

    def evaluation(**kw: object) -> RolloutEvent | None:
        d = criteria.decide(cfg, Window(None, None, {"greeting": agg(**kw)}))
        row = decisions.record(session=session, decision=d, actor_id=SYSTEM)
        return rollout.apply_decision(session=session, config=cfg, decision=row)

    assert evaluation(fail=100) is None
    assert evaluation(fail=101) is None
    assert evaluation() is None  # a GO in between resets the count
    assert evaluation(fail=100) is None
    assert evaluation(fail=102) is None
    ev = evaluation(fail=103)
    assert ev is not None and ev.stage == 0 and "3 NO-GO decisions in a row" in ev.reason
    assert evaluation(fail=104) is None  # already at 0 %: nothing more to do


def test_kill_keeps_the_stage_and_blocks_advancing(session: Session) -> None:
    cfg = config()
    admin = _admin(session)
    _approved_go(session, admin)
    rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=0)
    rollout.set_kill(session=session, actor_id=admin, on=True, reason="incident 42")
    state = rollout.state(session=session)
    assert state.killed and state.stage == 10 and state.serving == 0
    with pytest.raises(RolloutError, match="kill switch is on"):
        rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=10**6)
    with pytest.raises(RolloutError, match="give a reason to release the kill switch"):
        rollout.set_kill(session=session, actor_id=SYSTEM, on=False, reason="  ")
    assert rollout.state(session=session).killed  # issue 27 item 7: no release without a reason
    # the CLI operator may release
    rollout.set_kill(session=session, actor_id=SYSTEM, on=False, reason="incident 42 resolved")
    assert rollout.state(session=session).serving == 10
    trail = decisions.audit(session=session)
    assert [r.what for r in trail[:2]] == [
        "kill switch released by system/CLI: incident 42 resolved; back to 10%",
        "kill switch pulled by admin-r: incident 42; the teacher serves every request",
    ]


# --- the kill switch reaching a running proxy --------------------------------------------


@pytest.fixture
def live_rollout(migrated, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """A committed rollout at 100 % for greeting, and a fresh routing cache."""
    with db.session_scope(migrated.db_url) as s:
        s.add(
            RolloutEvent(
                action="advance",
                stage=100,
                details={"categories": ["greeting"], "salt": "s1"},
            )
        )
    routing.clear_cache()
    yield migrated
    routing.clear_cache()


def test_kill_switch_in_the_database_reaches_a_running_loop(
    live_rollout,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kill committed in the database reaches a loop that routes continuously: the first
    background read that starts after the commit returns the killed state, and from the loop's
    first teacher answer on, only the teacher serves. No timing bound a busy machine could
    break (a generous deadline only stops a test whose flip never arrives)."""
    reads: list[tuple[float, int]] = []  # (start of a background read, stage it returned)
    real_read = routing._read

    def read(url: str) -> routing._Snapshot:
        started = time.monotonic()
        snap = real_read(url)
        reads.append((started, snap.stage))
        return snap

    monkeypatch.setattr(routing, "_read", read)
    assert routing.wait_ready(timeout=60)
    assert routing.route(key="u1", category="greeting").served_by == "student"
    seen: list[tuple[float, str]] = []
    stop = threading.Event()

    def proxy_loop() -> None:  # what the proxy does: route() per request
        while not stop.is_set():
            seen.append((time.monotonic(), routing.route(key="u1", category="greeting").served_by))
            time.sleep(0.005)

    worker = threading.Thread(target=proxy_loop)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not any(who == "student" for _, who in seen) and time.monotonic() < deadline:
            time.sleep(0.01)
        with db.session_scope(live_rollout.db_url) as s:
            rollout.set_kill(session=s, actor_id=SYSTEM, on=True, reason="test")
        flipped = time.monotonic()
        deadline = flipped + 60
        while time.monotonic() < deadline and not (seen and seen[-1][1] == "teacher"):
            time.sleep(0.05)
        time.sleep(0.1)  # a few more requests after the flip arrived
    finally:
        stop.set()
        worker.join()
    assert any(who == "student" for t, who in seen if t < flipped)
    teacher_at = [t for t, who in seen if t >= flipped and who == "teacher"]
    assert teacher_at, "the kill committed in the database never reached the loop"
    assert {who for t, who in seen if t > teacher_at[0]} == {"teacher"}
    after_flip = [stage for started, stage in reads if started > flipped]
    assert after_flip and after_flip[0] == 0  # the next refresh already saw the kill


def test_kill_switch_env_var_acts_at_once(live_rollout, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    assert routing.wait_ready()
    assert routing.route(key="u1", category="greeting").served_by == "student"
    monkeypatch.setenv(killswitch.KILL_ENV, "1")
    r = routing.route(key="u1", category="greeting")
    assert (r.served_by, r.stage) == ("teacher", 0)
    monkeypatch.setenv(killswitch.KILL_ENV, "0")
    assert routing.route(key="u1", category="greeting").served_by == "student"


def test_unreadable_database_means_teacher(home, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    routing.clear_cache()  # the home has no migrated database: no rollout table
    r = routing.route(key="u1", category="greeting")
    assert (r.served_by, r.stage) == ("teacher", 0)
    routing.clear_cache()


def test_current_stage(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the student serves now: the newest event's stage, 0 when killed in the database
    or by the environment's kill switch."""
    monkeypatch.delenv(killswitch.KILL_ENV, raising=False)
    assert rollout.current_stage(session=session) == 0
    t = datetime(2026, 1, 1, tzinfo=UTC)
    session.add(RolloutEvent(action="advance", stage=10, created_at=t))
    session.add(RolloutEvent(action="advance", stage=25, created_at=t.replace(day=2)))
    session.flush()
    assert rollout.current_stage(session=session) == 25
    monkeypatch.setenv(killswitch.KILL_ENV, "1")
    assert rollout.current_stage(session=session) == 0
    monkeypatch.delenv(killswitch.KILL_ENV)
    session.add(RolloutEvent(action="kill", stage=25, killed=True, created_at=t.replace(day=3)))
    session.flush()
    assert rollout.current_stage(session=session) == 0


def test_kill_switch_needs_a_reason(session: Session) -> None:
    admin = _admin(session)
    for blank in ("", "   "):
        with pytest.raises(RolloutError, match="give a reason"):
            rollout.set_kill(session=session, actor_id=admin, on=True, reason=blank)
    assert not rollout.state(session=session).killed

"""The Readiness page's admin actions: evaluate, approve, override, advance, roll back, kill.

Each button is shown only to roles that ``shadowtutor.accounts.permissions`` allows its
action; the role is checked again on the server right before it writes, and the core
functions check the
account once more against the database.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from sqlmodel import Session

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.app import auth
from shadowtutor.app.auth import CurrentUser
from shadowtutor.app.text import inert
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate import criteria, decisions, evaluate, rollout
from shadowtutor.views import readiness

FLASH = "readiness-flash"
# The actions behind this page's buttons (shadowtutor.accounts.permissions.ACTIONS).
ACTIONS = ("gate.approve", "gate.override", "rollout.advance", "rollout.kill")


def allowed(action: str) -> bool:
    """The role, checked again on the server right before any write."""
    current = auth.current_user()
    if current is None or not permissions.allowed(current.role, action):
        roles = " and ".join(f"{r}s" for r in permissions.roles_for(action))
        st.error(f"Only {roles} may do this ({action}).")
        return False
    return True


def act(url: str, action: str, fn: Callable[[Session], object], done: str) -> None:
    """Run an admin action in one transaction; show its error or reload with a note."""
    if not allowed(action):
        return
    try:
        with db.session_scope(url) as session:
            fn(session)
    except ShadowTutorError as exc:
        st.error(inert(exc))
        return
    st.session_state[FLASH] = done
    st.rerun()


def render(
    view: readiness.View, config: criteria.GateConfig, settings: Settings, user: CurrentUser
) -> None:
    """The action buttons and forms, each for the roles allowed its action."""
    state = view.state
    may = {a: permissions.allowed(user.role, a) for a in ACTIONS}
    st.subheader("Actions")
    d = view.decision
    a = st.columns(3)
    if may["gate.approve"] and a[0].button(
        "Evaluate now", type="primary", icon=":material/refresh:"
    ):
        try:
            result = allowed("gate.approve") and evaluate.evaluate(
                settings, config, actor_id=user.id, student=view.student
            )
        except ShadowTutorError as exc:
            st.error(inert(exc))
        else:
            if not result:
                st.stop()
            note = f"Decision #{result.decision_id}: {criteria.label(result.decision.outcome)}"
            st.session_state[FLASH] = note + (
                f". AUTOMATIC ROLLBACK: {result.rollback}" if result.rollback else ""
            )
            st.rerun()
    approvable = d is not None and d.outcome == criteria.GO and not view.approval.approved
    if may["gate.approve"] and approvable:
        if a[1].button(f"Approve GO #{d.id}", icon=":material/verified:"):
            act(
                settings.db_url,
                "gate.approve",
                lambda s: decisions.approve(session=s, decision_id=d.id, actor_id=user.id),
                f"Decision #{d.id} approved",
            )
    nxt = view.next_stage
    if (
        may["rollout.advance"]
        and nxt is not None
        and a[2].button(f"Advance to {nxt}%", disabled=bool(view.blockers))
    ):
        act(
            settings.db_url,
            "rollout.advance",
            lambda s: rollout.advance(
                session=s,
                config=config,
                actor_id=user.id,
                served_at_stage=view.served,
                student=view.student,
                feedback=view.feedback,
            ),
            f"Advanced to {nxt}%",
        )
    for problem in view.blockers if may["rollout.advance"] and nxt is not None else []:
        st.caption(f"Before advancing: {inert(problem)}")
    overridable = (
        d is not None and d.outcome == criteria.NO_GO and not d.evidence.get("critical_failure")
    )
    if may["gate.override"] and overridable:
        with st.form("override"):
            reason = st.text_area(
                "Override this NO-GO: why are the failed criteria acceptable?",
                key="override-reason",
            )
            if st.form_submit_button(f"Override NO-GO #{d.id}"):
                act(
                    settings.db_url,
                    "gate.override",
                    lambda s: decisions.override(
                        session=s, decision_id=d.id, actor_id=user.id, reason=reason
                    ),
                    "Override recorded (flagged)",
                )
    if not may["rollout.kill"]:
        return
    b = st.columns(2)
    with b[0].form("rollback"):
        why = st.text_input("Reason for the rollback", key="rollback-reason")
        if st.form_submit_button("Roll back to 0%", disabled=state.stage == 0):
            act(
                settings.db_url,
                "rollout.kill",
                lambda s: rollout.rollback(session=s, actor_id=user.id, reason=why),
                "Rolled back",
            )
    with b[1].form("kill"):
        kill_why = st.text_input("Reason", key="kill-reason")
        label = "Release the kill switch" if state.killed else "Pull the kill switch"
        if st.form_submit_button(label, type="secondary" if state.killed else "primary"):
            act(
                settings.db_url,
                "rollout.kill",
                lambda s: rollout.set_kill(
                    session=s, actor_id=user.id, on=not state.killed, reason=kill_why
                ),
                label + ": done",
            )

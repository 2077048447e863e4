"""The Readiness page's admin actions: evaluate, approve, override, advance, roll back, kill.

Each action checks the role again on the server right before it writes, and the core
functions check it once more against the database.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from sqlmodel import Session

from shadowtutor import db
from shadowtutor.app import auth
from shadowtutor.app.auth import CurrentUser
from shadowtutor.config import Settings
from shadowtutor.dashboards import readiness
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate import criteria as gate
from shadowtutor.gate import decisions, rollout
from shadowtutor.gate import evaluate as gate_eval

FLASH = "readiness-flash"


def allowed() -> bool:
    """The role, checked again on the server right before any write."""
    current = auth.current_user()
    if current is None or current.role != "admin":
        st.error("Only an admin may do this.")
        return False
    return True


def act(url: str, fn: Callable[[Session], object], done: str) -> None:
    """Run an admin action in one transaction; show its error or reload with a note."""
    if not allowed():
        return
    try:
        with db.session_scope(url) as session:
            fn(session)
    except ShadowTutorError as exc:
        st.error(str(exc))
        return
    st.session_state[FLASH] = done
    st.rerun()


def render(
    view: readiness.View, config: gate.GateConfig, settings: Settings, user: CurrentUser
) -> None:
    """The action buttons and forms (call only for admins)."""
    state = view.state
    st.subheader("Actions")
    d = view.decision
    a = st.columns(3)
    if a[0].button("Evaluate now", type="primary", icon=":material/refresh:"):
        try:
            result = allowed() and gate_eval.evaluate(settings, config, actor_id=user.id)
        except ShadowTutorError as exc:
            st.error(str(exc))
        else:
            if not result:
                st.stop()
            note = f"Decision #{result.decision_id}: {gate.label(result.decision.outcome)}"
            st.session_state[FLASH] = note + (
                f". AUTOMATIC ROLLBACK: {result.rollback}" if result.rollback else ""
            )
            st.rerun()
    if d is not None and d.outcome == gate.GO and not view.approval.approved:
        if a[1].button(f"Approve GO #{d.id}", icon=":material/verified:"):
            act(
                settings.db_url,
                lambda s: decisions.approve(session=s, decision_id=d.id, actor_id=user.id),
                f"Decision #{d.id} approved",
            )
    nxt = view.next_stage
    if nxt is not None and a[2].button(f"Advance to {nxt}%", disabled=bool(view.blockers)):
        act(
            settings.db_url,
            lambda s: rollout.advance(
                session=s, config=config, actor_id=user.id, served_at_stage=view.served
            ),
            f"Advanced to {nxt}%",
        )
    for problem in view.blockers if nxt is not None else []:
        st.caption(f"Before advancing: {problem}")
    if d is not None and d.outcome == gate.NO_GO and not d.evidence.get("critical_failure"):
        with st.form("override"):
            reason = st.text_area(
                "Override this NO-GO: why are the failed criteria acceptable?",
                key="override-reason",
            )
            if st.form_submit_button(f"Override NO-GO #{d.id}"):
                act(
                    settings.db_url,
                    lambda s: decisions.override(
                        session=s, decision_id=d.id, actor_id=user.id, reason=reason
                    ),
                    "Override recorded (flagged)",
                )
    b = st.columns(2)
    with b[0].form("rollback"):
        why = st.text_input("Reason for the rollback", key="rollback-reason")
        if st.form_submit_button("Roll back to 0%", disabled=state.stage == 0):
            act(
                settings.db_url,
                lambda s: rollout.rollback(session=s, actor_id=user.id, reason=why),
                "Rolled back",
            )
    with b[1].form("kill"):
        kill_why = st.text_input("Reason", key="kill-reason")
        label = "Release the kill switch" if state.killed else "Pull the kill switch"
        if st.form_submit_button(label, type="secondary" if state.killed else "primary"):
            act(
                settings.db_url,
                lambda s: rollout.set_kill(
                    session=s, actor_id=user.id, on=not state.killed, reason=kill_why
                ),
                label + ": done",
            )

"""The Readiness page's control to start a new evidence epoch by hand (admins, with a written
reason; audited). The role is checked again on the server before the write, and
:func:`shadowtutor.gate.epochs.start` checks the account once more against the database."""

from __future__ import annotations

import streamlit as st

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.app import gate_actions
from shadowtutor.app.auth import CurrentUser
from shadowtutor.config import Settings
from shadowtutor.gate import criteria, epochs
from shadowtutor.views import epoch

ACTION = "gate.epoch"


def render(
    settings: Settings,
    config: criteria.GateConfig,
    user: CurrentUser,
    student: str | None,
    evidence: dict[str, object],
) -> None:
    """The pending-epoch line for everyone; the start form for the roles allowed it."""
    with db.session_scope(settings.db_url) as session:
        note = epoch.pending_note(session=session, student=student, evidence=evidence)
    if note:
        st.text(note)  # the reason is an admin's words: text, never Markdown
    if not permissions.allowed(user.role, ACTION):
        return
    with st.expander("Start a new evidence epoch"):
        st.caption(
            "The evidence gathered so far lapses: the next decisions count only what comes "
            "after now, and spend the next (smaller) share of the error budget. Use it after a "
            f"change the student registry does not see. At least {epochs.MIN_REASON} "
            "characters of reason, kept in the audit trail."
        )
        with st.form("epoch-start"):
            reason = st.text_input("Why the evidence so far no longer counts", key="epoch-reason")
            if st.form_submit_button("Start a new epoch"):
                gate_actions.act(
                    settings.db_url,
                    ACTION,
                    lambda s: epochs.start(
                        session=s, actor_id=user.id, config=config, student=student, reason=reason
                    ),
                    "New evidence epoch started: " + reason.strip(),
                )

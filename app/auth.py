"""Login, logout and the role check every page runs first.

The session keeps only ids and the role (``user_id``, ``username``, ``role``); the account is
re-read on each run so a disabled account or a changed role takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from shadowtutor import db
from shadowtutor.app import deps
from shadowtutor.app.registry import page
from shadowtutor.throttle import THROTTLE, LoginRefused


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str
    display_name: str


def current_user() -> CurrentUser | None:
    user_id = st.session_state.get("user_id")
    if user_id is None:
        return None
    with db.session_scope(deps.settings().db_url) as session:
        from shadowtutor.tables import User

        user = session.get(User, user_id)
        if user is None or user.disabled:
            logout()
            return None
        st.session_state["role"] = user.role
        return CurrentUser(user.id, user.username, user.role, user.display_name or user.username)


def login_form() -> None:
    st.title("ShadowTutor")
    st.caption("Shadow a paid cloud model with a local one, and move over with evidence.")
    with st.form("login"):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        with db.session_scope(deps.settings().db_url) as session:
            try:
                user = THROTTLE.login(
                    session=session,
                    username=username,
                    password=password,
                    client=st.context.ip_address,
                )
            except LoginRefused as exc:
                st.error(str(exc))
                return
            st.session_state["user_id"] = user.id
            st.session_state["username"] = user.username
            st.session_state["role"] = user.role
        st.rerun()


def logout() -> None:
    for key in ("user_id", "username", "role"):
        st.session_state.pop(key, None)


def guard(page_key: str) -> CurrentUser:
    """Stop the page unless the logged-in user's role may open it. Call first in every page."""
    spec = page(page_key)
    user = current_user()
    if user is None:
        st.error("Please log in first.")
        st.stop()
    if user.role not in spec.roles:
        st.error(
            f"Your role ({user.role}) may not open {spec.title}. "
            f"It is for: {', '.join(spec.roles)}. Ask an admin if you need access."
        )
        st.stop()
    return user

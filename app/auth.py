"""Login, logout and the role check every page runs first.

A login lasts across reloads, new tabs and typed addresses: the login form starts a session
(``shadowtutor.accounts.sessions``) and the page asks the cookie route of ``app/server.py`` in
the background (a ``fetch``), which sets the signed ``HttpOnly; SameSite=Lax`` cookie. The tab
that logged in goes straight on to the page first asked for: it knows the user from its own
state, so the page is drawn once (a full-page trip through the route drew it twice and reloaded
the app, 0.5-1 s of a log-in; issue 27 item 11). Should the request fail, the browser goes
through the route itself, as before. Each run then finds the user from the tab's state or,
in a new tab, from the cookie (``st.context.cookies``), and re-reads the session and the
account, so a logout, a disabled account, a changed password or role takes effect at once.

The tab's state keeps only ids and the role (``user_id``, ``username``, ``role``,
``web_session_id``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import streamlit as st

from shadowtutor import db
from shadowtutor.accounts import sessions
from shadowtutor.accounts.throttle import THROTTLE, LoginRefused
from shadowtutor.app import deps, layout
from shadowtutor.app.registry import page
from shadowtutor.app.text import inert
from shadowtutor.demo import home

STATE_KEYS = ("user_id", "username", "role", "web_session_id")
CLAIM, END = "/session/claim", "/session/end"  # routes of app/server.py


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str
    display_name: str


def _key() -> str:
    s = deps.settings()
    return sessions.secret(configured=s.session_secret, home=s.home_path)


def _cookie() -> str | None:
    try:
        return st.context.cookies.get(sessions.COOKIE)
    except Exception:  # no browser behind this run (AppTest, bare mode)
        return None


def current_user() -> CurrentUser | None:
    try:
        return _current_user()
    except db.DatabaseError:
        # The database is unreachable (a restart, say): the identity this tab's previous run
        # checked stands for this run, so that a page can keep what was typed and say what
        # was not saved. Every action still goes through the database, which refuses it.
        state = st.session_state
        if state.get("user_id") is None or not state.get("role"):
            raise
        name = str(state.get("username") or "")
        return CurrentUser(int(state["user_id"]), name, str(state["role"]), name)


def _current_user() -> CurrentUser | None:
    ws_id = st.session_state.get("web_session_id")
    user_id = st.session_state.get("user_id")
    with db.session_scope(deps.settings().db_url) as session:
        from shadowtutor.tables import User

        if ws_id is not None:  # this tab logged in, or came in with a cookie: still live?
            found = sessions.active(session=session, session_id=ws_id)
            user = found.user if found else None
        elif user_id is not None:  # a tab without a cookie session (tests, bare mode)
            user = session.get(User, user_id)
        else:  # a new tab, a reload, a bookmark: the cookie
            found = sessions.resolve(session=session, cookie=_cookie(), key=_key())
            user = found.user if found else None
            if found:
                st.session_state["web_session_id"] = found.session_id
        if user is None or user.disabled:
            _forget()
            return None
        st.session_state["user_id"] = user.id
        st.session_state["username"] = user.username
        st.session_state["role"] = user.role
        return CurrentUser(user.id, user.username, user.role, user.display_name or user.username)


def requested_path() -> str:
    """The path of the address the browser is at (``/cost``), to land there after login."""
    try:
        url = st.context.url
    except Exception:
        url = None
    return sessions.safe_next(urlsplit(url).path if url else "/")


def login_form() -> None:
    st.title("ShadowTutor")
    st.caption("Shadow a paid cloud model with a local one, and move over with evidence.")
    _demo_accounts_hint()
    with st.form("login"):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in", type="primary")
    layout.warm_charts()
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
                st.error(inert(exc))
                return
            started = sessions.start(
                session=session, user_id=user.id, hours=deps.settings().session_hours
            )
            st.session_state["user_id"] = user.id
            st.session_state["username"] = user.username
            st.session_state["role"] = user.role
            st.session_state["web_session_id"] = started.session_id
        st.session_state["claim_to"] = f"{CLAIM}?t={quote(started.handoff)}"
        st.session_state["claim_next"] = requested_path()
        st.rerun()


def _demo_accounts_hint() -> None:
    """On a home `shadowtutor demo` filled (it leaves a marker there), name its accounts."""
    accounts = home.accounts(deps.settings().home_path)
    if accounts:
        st.info("Demo data: log in with one of these accounts (username / password).")
        st.code(
            "\n".join(f"{a.role:<9} {a.username} / {a.password}" for a in accounts), language=None
        )


# The claim answers with a redirect (to the page, for the fallback): ``manual`` stops there,
# its cookie already stored, instead of fetching the app's page for nothing.
_CLAIM_SCRIPT = """<script>
fetch(%(claim)s, {credentials: "same-origin", cache: "no-store", redirect: "manual"})
  .then(function (r) { if (r.type !== "opaqueredirect" && !r.ok) throw r; })
  .catch(function () { window.location.replace(%(fallback)s); });
</script>"""


def landing_path() -> str | None:
    """Once, right after a login: the path of the page first asked for (``/cost``), for the
    router to switch to (the run after the login form's starts at Home)."""
    return st.session_state.pop("claim_next", None)


def claim_cookie() -> None:
    """Once, right after a login (on the page first asked for): have the browser fetch the
    session cookie in the background."""
    claim = st.session_state.pop("claim_to", None)
    if claim:
        follow = f"{claim}&next={quote(requested_path())}"
        script = _CLAIM_SCRIPT % {"claim": json.dumps(claim), "fallback": json.dumps(follow)}
        st.html(script, unsafe_allow_javascript=True)


def follow_redirect() -> None:
    """Send the browser to a pending address (the cookie route after logout). The tab works
    without it (its state knows the user); the cookie is what a reload needs."""
    target = st.session_state.pop("redirect_to", None)
    if target:
        st.html(
            f"<script>window.location.replace({json.dumps(target)});</script>",
            unsafe_allow_javascript=True,
        )


def logout() -> None:
    ws_id = st.session_state.get("web_session_id")
    if ws_id is not None:
        with db.session_scope(deps.settings().db_url) as session:
            sessions.revoke(session=session, session_id=ws_id, reason="logout")
    _forget()
    st.session_state["redirect_to"] = END


def _forget() -> None:
    for key in STATE_KEYS:
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

"""Helpers for AppTest: make an account of a role and open a page as that account."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from shadowtutor import db
from shadowtutor.accounts import users
from shadowtutor.accounts.permissions import SYSTEM
from shadowtutor.tables import UserCreate

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")


def texts(elements) -> str:  # noqa: ANN001
    """The values of AppTest elements (``at.error``, ``at.info`` ...) as one string."""
    return " ".join(str(e.value) for e in elements)


def make_user(url: str, role: str, username: str | None = None) -> int:
    """Create (or reuse) an account with a password of 'password-<role>'; return its id."""
    name = username or f"{role}-user"
    with db.session_scope(url) as session:
        existing = users.get_user(session=session, username=name)
        if existing:
            return existing.id
        user = users.add_user(
            session=session,
            user=UserCreate(username=name, role=role, password=f"password-{role}"),
            actor_id=SYSTEM,
        )
        return user.id


def login(at: AppTest, url: str, role: str, username: str | None = None) -> AppTest:
    uid = make_user(url, role, username)
    at.session_state["user_id"] = uid
    at.session_state["username"] = username or f"{role}-user"
    at.session_state["role"] = role
    return at


def page_as(path: str, url: str, role: str, timeout: float = 60) -> AppTest:
    """AppTest of one page file (run directly, without the router), logged in as ``role``."""
    return login(AppTest.from_file(str(ROOT / path), default_timeout=timeout), url, role)


def sign_in(username: str, password: str, timeout: float = 60) -> AppTest:
    """AppTest of the whole app after typing ``username`` and ``password`` into the login form
    and pressing its button (the session is signed in only when they are right)."""
    at = AppTest.from_file(MAIN, default_timeout=timeout).run()
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return at.button[0].click().run()


def app_as(url: str, role: str, timeout: float = 60) -> AppTest:
    """AppTest of the whole app (router) logged in as ``role``; call ``.run()`` next."""
    return login(AppTest.from_file(MAIN, default_timeout=timeout), url, role)


def switch(at: AppTest, path: str | Path) -> AppTest:
    """Go to a page (relative to the repository root, e.g. 'pages/home.py', or absolute) and run."""
    return at.switch_page(str(ROOT / path)).run()

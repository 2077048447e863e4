"""The app shell in AppTest: login, logout, each role's menu, refusals on the server."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from shadowtutor import db
from shadowtutor.accounts import permissions, users
from shadowtutor.app.registry import PAGES, page_at, pages_for, unknown_page
from tests.support.apputil import MAIN, app_as, make_user, sign_in, switch


def menu(at: AppTest) -> list[str]:
    return [el.proto.label for el in at.sidebar.get("page_link")]


def test_login_with_a_wrong_password_is_refused(migrated) -> None:
    make_user(migrated.db_url, "admin", "alice")
    at = sign_in("alice", "wrong-password")
    assert "wrong password" in at.error[0].value
    assert "user_id" not in at.session_state


def test_repeated_wrong_passwords_lock_the_login_with_a_clear_message(
    migrated, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shadowtutor.accounts import throttle

    monkeypatch.setattr(throttle, "THROTTLE", throttle.LoginThrottle(sleep=lambda s: None))
    monkeypatch.setattr("shadowtutor.app.auth.THROTTLE", throttle.THROTTLE)
    make_user(migrated.db_url, "admin", "tess")
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    for password in ["guess"] * throttle.ACCOUNT_LIMIT + ["password-admin"]:
        at.text_input[0].input("tess")
        at.text_input[1].input(password)
        at.button[0].click().run()
    assert "Too many failed log-ins for this account" in at.error[0].value
    assert "user_id" not in at.session_state


def test_login_then_logout(migrated) -> None:
    make_user(migrated.db_url, "manager", "marco")
    at = sign_in("marco", "password-manager")
    assert at.session_state["role"] == "manager"
    assert [m.label for m in at.metric][0] == "Pairs, last 7 days"
    at.sidebar.button[0].click().run()  # Log out
    assert "user_id" not in at.session_state
    assert at.text_input[0].label == "Username"


@pytest.mark.parametrize("role", ["admin", "reviewer", "manager"])
def test_each_role_sees_only_its_pages(migrated, role: str) -> None:
    at = app_as(migrated.db_url, role).run()
    assert not at.exception
    assert menu(at) == [p.title for p in pages_for(role)]


@pytest.mark.parametrize(
    ("role", "spec"),
    [(r, p) for p in PAGES for r in ("admin", "reviewer", "manager") if r not in p.roles],
    ids=lambda v: getattr(v, "key", v),
)
def test_a_page_outside_the_role_is_refused_on_the_server(migrated, role: str, spec) -> None:
    at = app_as(migrated.db_url, role).run()
    switch(at, spec.path)
    assert any(f"may not open {spec.title}" in e.value for e in at.error)


def test_a_disabled_account_is_logged_out_on_its_next_run(migrated) -> None:
    at = app_as(migrated.db_url, "reviewer").run()
    with db.session_scope(migrated.db_url) as session:
        users.set_disabled(session=session, username="reviewer-user", actor_id=permissions.SYSTEM)
    at.run()
    assert "user_id" not in at.session_state


def test_the_app_refuses_a_database_behind_head(settings) -> None:
    db.upgrade(settings.db_url, "0001")
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert "Run `shadowtutor db upgrade`" in at.error[0].value
    assert len(at.text_input) == 0  # no login form on a stale schema


@pytest.mark.parametrize(
    ("path", "base", "unknown"),
    [
        ("/", "", None),
        ("/cost", "", None),
        ("/cots", "", "cots"),
        ("/shadow/", "shadow", None),
        ("/shadow/review", "/shadow", None),
        ("/shadow/nope/", "shadow", "nope"),
    ],
)
def test_an_unknown_page_address_is_named(path: str, base: str, unknown: str | None) -> None:
    """Issue 27 item 12: a typed unknown page went to Home without a word."""
    assert unknown_page(path, base) == unknown


@pytest.mark.parametrize(
    ("path", "base", "key"),
    [
        ("/", "", None),
        ("/cost", "", "cost"),
        ("/cots", "", None),
        ("/shadow/review", "/shadow", "review"),
        ("/shadow/", "shadow", None),
    ],
)
def test_the_page_an_address_names(path: str, base: str, key: str | None) -> None:
    """After a login the tab switches to the page first asked for (a deep link)."""
    assert page_at(path, base) == key

"""Staying signed in, in headless Chromium against the real server (`shadowtutor app`):
reload, new tab, a deep link kept through the login, logout and a password change revoking
the cookie, a forbidden deep link refused with the usual message, and no request leaving
for an outside host."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shadowtutor import db
from shadowtutor.accounts import sessions, users
from shadowtutor.accounts.permissions import SYSTEM
from tests.support.apputil import make_user
from tests.support.browser import app_server, browser_page, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("browser-sessions") / "home"
    url = f"sqlite:///{home / 'shadowtutor.db'}"
    db.upgrade(url)
    make_user(url, "manager", "marco")
    make_user(url, "reviewer", "rita")
    return home


def _log_in(page, username: str, password: str) -> None:  # noqa: ANN001
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Log out").wait_for()
    wait_idle(page)


def _outside_requests(page, base: str) -> list[str]:  # noqa: ANN001
    here = urlsplit(base).netloc
    seen: list[str] = []
    page.on(
        "request",
        lambda r: (
            seen.append(r.url)
            if urlsplit(r.url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(r.url).netloc != here
            else None
        ),
    )
    return seen


def test_deep_link_survives_login_reload_and_new_tab(home: Path) -> None:
    with app_server(home) as base, browser_page() as page:
        outside = _outside_requests(page, base)
        page.goto(f"{base}/cost")
        _log_in(page, "marco", "password-manager")
        page.wait_for_url(f"{base}/cost")
        page.get_by_text("Teacher spend").first.wait_for()  # the Cost page, not Home
        cookie = next(c for c in page.context.cookies() if c["name"] == sessions.COOKIE)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > 0
        assert not page.evaluate("document.cookie").count(sessions.COOKIE)  # no script sees it

        page.reload()
        page.get_by_text("Log out").wait_for()
        page.get_by_text("Teacher spend").first.wait_for()
        assert page.get_by_role("textbox", name="Username").count() == 0

        tab = page.context.new_page()  # a new tab, a typed address
        tab.goto(f"{base}/quality")
        tab.get_by_text("Log out").wait_for()
        wait_idle(tab)
        assert tab.get_by_role("textbox", name="Username").count() == 0
        tab.close()
        wait_idle(page)
        assert outside == [], outside  # e.g. the favicon from a font server


def test_logout_revokes_the_cookie_everywhere(home: Path) -> None:
    with app_server(home) as base, browser_page() as page:
        page.goto(base)
        _log_in(page, "marco", "password-manager")
        stolen = next(c for c in page.context.cookies() if c["name"] == sessions.COOKIE)
        page.get_by_role("button", name="Log out").click()
        page.get_by_role("textbox", name="Username").wait_for()
        page.reload()
        page.get_by_role("textbox", name="Username").wait_for()
        # the cookie's value is dead on the server, not only deleted from this browser
        page.context.add_cookies([{**stolen}])
        page.goto(f"{base}/cost")
        page.get_by_role("textbox", name="Username").wait_for()
        wait_idle(page)
        assert page.get_by_text("Log out").count() == 0


def test_password_change_logs_out_on_reload(home: Path) -> None:
    url = f"sqlite:///{home / 'shadowtutor.db'}"
    with app_server(home) as base, browser_page() as page:
        page.goto(base)
        _log_in(page, "marco", "password-manager")
        with db.session_scope(url) as session:
            users.set_password(
                session=session, actor_id=SYSTEM, username="marco", password="password-manager"
            )
        page.reload()
        page.get_by_role("textbox", name="Username").wait_for()


def test_forbidden_deep_link_is_refused_with_the_message(home: Path) -> None:
    with app_server(home) as base, browser_page() as page:
        page.goto(f"{base}/cost")
        _log_in(page, "rita", "password-reviewer")
        page.get_by_text("Your role (reviewer) may not open Cost").wait_for()
        assert urlsplit(page.url).path == "/cost"  # refused there, not swapped for Home

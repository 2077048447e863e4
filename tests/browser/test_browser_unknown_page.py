"""A typed address that names no page says so on Home (issue 27 item 12: it went there
silently)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowtutor import db
from tests.support import browser
from tests.support.apputil import make_user

pytestmark = pytest.mark.browser


def test_a_typed_unknown_page_says_there_is_none(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'shadowtutor.db'}"
    db.upgrade(url)
    make_user(url, "admin", "admin")
    with browser.app_server(home) as base, browser.browser_page() as page:
        page.goto(f"{base}/cots")
        page.locator("input[aria-label=Username]").fill("admin")
        page.locator("input[type=password]").fill("password-admin")
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("Log out").wait_for()
        page.goto(f"{base}/cots")  # a typo of /cost, typed when logged in
        page.get_by_text("There is no page at /cots").wait_for(timeout=30_000)
        page.locator("h1").filter(has_text="ShadowTutor").first.wait_for()

"""The Students and Leaderboard pages (with the learning curve) in headless Chromium on the
demo's three students; screenshots for the README."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import browser
from tests.support.browser import SCREENSHOTS, app_server, browser_page, login, open_page

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("SHADOWTUTOR_SHOTS", str(SCREENSHOTS)))


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return browser.demo_home(
        tmp_path_factory.mktemp("browser-students"), pairs=6000, days=40, seed=7
    )


def test_students_and_leaderboard(demo_home: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with app_server(demo_home) as base, browser_page(height=1400) as page:
        login(page, base, "admin", "demo-admin")
        open_page(page, "Students", wait_for_text="Retire a student")
        page.locator('[data-testid="stDataFrame"]').first.wait_for()
        browser.wait_idle(page)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "students.png"), full_page=True)
        text = page.inner_text("body")  # the table itself is drawn on a canvas
        assert "Register a student" in text and "Student" in text and "Traceback" not in text

        open_page(page, "Leaderboard", wait_for_text="Learning curve")
        page.locator(".js-plotly-plot").first.wait_for()
        browser.wait_idle(page)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(SHOTS / "leaderboard.png"), full_page=True)
        text = page.inner_text("body")
        assert "Compare two students" in text and "Student A" in text
        assert "Traceback" not in text and "No student answers" not in text
        curve = page.locator(".js-plotly-plot").first
        curve.scroll_into_view_if_needed()
        curve.screenshot(path=str(SHOTS / "learning-curve.png"))

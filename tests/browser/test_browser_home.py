"""The real app in headless Chromium: log in, see the Home page's headline figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowtutor.app.registry import PAGES
from tests.support import browser
from tests.support.browser import SCREENSHOTS, app_server, browser_page, login, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return browser.demo_home(tmp_path_factory.mktemp("browser"), pairs=4000, days=30, seed=3)


def test_home_page_shows_headline_figures(demo_home: Path) -> None:
    with app_server(demo_home) as base, browser_page() as page:
        login(page, base, "manager", "demo-manager")
        page.get_by_text("Pairs, last 7 days").wait_for()
        wait_idle(page)
        labels = (
            "Teacher spend this month",
            "Mean similarity, 7 days",
            "Student P95 latency, 7 days",
            "Reviews done",
            "Deploy gate",
            "Student serves",
        )
        for label in labels:
            # exact: Home also says "The student serves no users now" (users' feedback)
            assert page.get_by_text(label, exact=True).is_visible()
        values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
        assert len(values) == 8 and all(v and v != "n/a" for v in values), values
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
        wait_idle(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "home.png"), full_page=True)
        sidebar = page.locator('[data-testid="stSidebar"]')
        for spec in PAGES:  # the menu lists exactly the manager's pages
            links = sidebar.get_by_role("link", name=spec.title, exact=True).count()
            assert links == (1 if "manager" in spec.roles else 0), spec.title

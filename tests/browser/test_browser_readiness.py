"""The Readiness page in headless Chromium on demo data (the screenshot in docs/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import browser
from tests.support.browser import SCREENSHOTS, app_server, browser_page, login, open_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return browser.demo_home(
        tmp_path_factory.mktemp("browser-readiness"), pairs=20000, days=60, seed=7
    )


def test_readiness_page_shows_a_decision(demo_home: Path) -> None:
    with app_server(demo_home) as base, browser_page(height=2300) as page:
        login(page, base, "admin", "demo-admin")
        open_page(page, "Readiness", wait_for_text="Audit trail")
        page.get_by_role("button", name="Evaluate now").click()
        page.get_by_text("decision #1").first.wait_for()
        page.locator(".js-plotly-plot").nth(1).wait_for()
        page.wait_for_timeout(1500)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "readiness.png"), full_page=True)
        text = page.inner_text("body")
        assert "Criteria" in text and "Similarity and review scores" in text
        assert "decision #1" in text and "Approval:" in text
        assert any(k in text for k in ("NOT ENOUGH DATA", "GO for", "NO-GO"))

"""The Cost and Quality & latency pages in headless Chromium on demo data (screenshots saved to
docs/screenshots/cost.png and quality.png)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import browser
from tests.support.browser import SCREENSHOTS, app_server, browser_page, login, open_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return browser.demo_home(tmp_path_factory.mktemp("watch"), pairs=12000, days=60, seed=7)


def _charts(page, at_least: int) -> int:  # noqa: ANN001
    """The number of charts once at least ``at_least`` have rendered (or the wait times out)."""
    selector = '[data-testid="stPlotlyChart"]'
    page.wait_for_function(f"() => document.querySelectorAll('{selector}').length >= {at_least}")
    return page.locator(selector).count()


def _shoot(page, name: str) -> None:  # noqa: ANN001
    """Grow the viewport to the page's height (Streamlit scrolls inside its main block, so
    a full-page screenshot alone stops at the window) and save the screenshot."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": int(height) + 40})
    page.wait_for_timeout(1500)  # charts re-layout to the new size
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 1100})


def test_cost_and_quality_pages(demo_home: Path) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with app_server(demo_home) as base, browser_page(height=1100) as page:
        login(page, base, "admin", "demo-admin")
        open_page(page, "Cost", wait_for_text="Most expensive prompts")
        page.locator(".js-plotly-plot").first.wait_for()
        assert _charts(page, 6) >= 6
        assert page.get_by_text("Set the monthly budget").is_visible()
        assert not page.locator('[data-testid="stException"]').count()
        _shoot(page, "cost.png")

        open_page(page, "Quality & latency", wait_for_text="Teacher vs student")
        page.locator(".js-plotly-plot").first.wait_for()
        assert _charts(page, 8) == 8
        assert not page.locator('[data-testid="stException"]').count()
        _shoot(page, "quality.png")

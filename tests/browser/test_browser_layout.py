"""Layout a daily user meets, in headless Chromium on demo data: the Review page's actions
in view at 1,000 px without scrolling, the sidebar overlay closing after choosing a page at
390 px, and screenshots of both."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import browser
from tests.support.browser import SCREENSHOTS, app_server, browser_page, login, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return browser.demo_home(tmp_path_factory.mktemp("browser-layout"), pairs=1500, days=20, seed=8)


def _in_view(page, locator) -> bool:  # noqa: ANN001
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def test_review_actions_are_in_view_at_1000px(demo_home: Path) -> None:
    with app_server(demo_home) as base, browser_page(width=1440, height=1000) as page:
        login(page, base, "reviewer", "demo-reviewer")
        page.locator('[data-testid="stSidebar"]').get_by_role(
            "link", name="Review", exact=True
        ).click()
        page.get_by_text("Your judgement").wait_for()
        wait_idle(page)
        for name in ("Approve (A)", "Reject (R)", "Skip (S)"):
            assert _in_view(page, page.get_by_role("button", name=name)), name
        assert _in_view(page, page.get_by_text("Which is better?").first)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "review-1000px.png"))
        page.get_by_role("button", name="Skip (S)").click()  # the bar works by mouse
        page.get_by_text("Saved: skip").wait_for()


def test_sidebar_overlay_closes_after_choosing_a_page_at_390px(demo_home: Path) -> None:
    with app_server(demo_home) as base, browser_page(width=390, height=844) as page:
        page.goto(base)  # the sidebar starts collapsed here, so not login(): it waits for Log out
        page.get_by_role("textbox", name="Username").fill("manager")
        page.get_by_role("textbox", name="Password").fill("demo-manager")
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("Pairs, last 7 days").wait_for()
        wait_idle(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        page.locator('[data-testid="stExpandSidebarButton"]').first.click()  # open the overlay
        page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stSidebar\"]')"
            ".getBoundingClientRect().right > 200"
        )
        sidebar.get_by_role("link", name="Cost", exact=True).click()
        page.get_by_text("Teacher spend today").wait_for()
        wait_idle(page)
        page.wait_for_function(  # the overlay slid away: the page is readable
            "() => document.querySelector('[data-testid=\"stSidebar\"]')"
            ".getBoundingClientRect().right <= 0",
            timeout=10_000,
        )
        page.screenshot(path=str(SCREENSHOTS / "cost-390px.png"))


_CUT = """(selector) => [...document.querySelectorAll(selector)]
    .filter(el => [el, ...el.querySelectorAll('*')]
        .some(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1))
    .map(el => el.textContent)"""


def test_go_to_links_and_filter_pills_are_not_cut_at_1440px(demo_home: Path) -> None:
    """Issue 14 item 10: Home's "Go to" labels read "Quality & la", "Review que" at 1440 px,
    and a chosen Source filter showed as an empty pill."""
    with app_server(demo_home) as base, browser_page(width=1440, height=1000) as page:
        login(page, base, "admin", "demo-admin")
        page.get_by_text("Go to").wait_for()
        wait_idle(page)
        links = '[data-testid="stMain"] [data-testid="stPageLink-NavLink"]'
        assert page.locator(links).count() >= 8
        assert page.evaluate(_CUT, links) == []
        page.locator('[data-testid="stSidebar"]').get_by_role(
            "link", name="Quality & latency"
        ).click()
        page.get_by_text("Latency and failures").wait_for()
        wait_idle(page)
        page.locator('[data-testid="stMultiSelect"]').filter(has_text="Source").click()
        option = page.get_by_role("option").first
        chosen = option.inner_text().strip()
        option.click()
        wait_idle(page)
        page.keyboard.press("Escape")
        pill = page.locator('[data-testid="stMultiSelect"] [data-tag]').first
        assert pill.inner_text().strip() == chosen
        assert page.evaluate(_CUT, '[data-testid="stMultiSelect"] [data-tag]') == []
        page.screenshot(path=str(SCREENSHOTS / "quality-source-filter.png"))

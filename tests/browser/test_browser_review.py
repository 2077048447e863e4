"""The Review page in headless Chromium on demo data: keyboard shortcuts really work, typing
in a text field does not trigger them, and a screenshot for the README."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from shadowtutor import db
from shadowtutor.tables import Review, User
from tests.support import browser
from tests.support.browser import SCREENSHOTS, app_server, browser_page, login, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return browser.demo_home(tmp_path_factory.mktemp("browser-review"), pairs=2000, days=30, seed=5)


def checked(page, key: str) -> list[str]:  # noqa: ANN001
    """Labels of the checked options of the radio with widget key ``key``."""
    return page.locator(f".st-key-{key} label:has(input:checked)").all_inner_texts()


def shortcuts_ready(page) -> None:  # noqa: ANN001
    page.wait_for_function("() => window.__stShortcutsOn === true")


def test_review_by_keyboard(demo_home: Path) -> None:
    url = f"sqlite:///{demo_home / 'shadowtutor.db'}"
    with db.session_scope(url) as s:
        rita = s.exec(select(User).where(User.username == "reviewer")).one().id
        before = len(s.exec(select(Review).where(Review.reviewer_id == rita)).all())
    with app_server(demo_home) as base, browser_page(height=1500) as page:
        login(page, base, "reviewer", "demo-reviewer")
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_role("link", name="Review", exact=True).click()
        page.get_by_text("Your judgement").wait_for()
        wait_idle(page)
        key = page.locator("[class*='st-key-q'][class*='_left']").first.get_attribute("class")
        prefix = next(c for c in key.split() if c.startswith("st-key-q")).removeprefix("st-key-")
        prefix = prefix.removesuffix("left")

        shortcuts_ready(page)
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        page.keyboard.press("4")
        wait_idle(page)
        assert checked(page, f"{prefix}left") == ["4"]
        page.keyboard.press("Shift+5")
        wait_idle(page)
        assert checked(page, f"{prefix}right") == ["5"]
        page.keyboard.press("e")  # right (teacher) better
        wait_idle(page)
        assert checked(page, f"{prefix}verdict") == ["Teacher better"]

        note = page.get_by_label("Note")
        note.fill("")
        note.type("2 small slips")  # digits typed in a field never change the score
        page.keyboard.press("Escape")
        wait_idle(page)
        assert checked(page, f"{prefix}left") == ["4"]

        page.get_by_role("heading", name="Review").first.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "review.png"), full_page=True)

        page.keyboard.press("a")  # approve
        page.get_by_text("Saved: approve").wait_for()
        wait_idle(page)
    with db.session_scope(url) as s:
        mine = s.exec(select(Review).where(Review.reviewer_id == rita).order_by(Review.id)).all()
    assert len(mine) == before + 1
    new = mine[-1]
    assert (new.decision, new.student_score, new.teacher_score, new.verdict) == (
        "approve", 4, 5, "teacher",
    )  # fmt: skip
    assert new.note == "2 small slips"


@pytest.mark.parametrize(
    ("user", "password", "title", "wait_for", "shot"),
    [
        ("admin", "demo-admin", "Review queue", "Tag taxonomy", "review_queue.png"),
        ("manager", "demo-manager", "Review progress", "Per reviewer", "review_progress.png"),
    ],
)
def test_queue_and_progress_pages(demo_home: Path, user, password, title, wait_for, shot) -> None:
    with app_server(demo_home) as base, browser_page(height=1600) as page:
        login(page, base, user, password)
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_role("link", name=title, exact=True).click()
        page.get_by_text(wait_for).first.wait_for()
        wait_idle(page)
        page.locator('[data-testid="stDataFrame"]').first.wait_for()
        page.locator('[data-testid="stSkeleton"]').first.wait_for(state="detached")
        page.wait_for_timeout(1500)  # let data grids paint
        assert not page.locator('[data-testid="stException"]').count()
        page.screenshot(path=str(SCREENSHOTS / shot), full_page=True)

"""Reading the pages at 1,440 and 1,024 px in headless Chromium, on demo data (issue 27
items 8, 9 and 10): Readiness's tables show every column without scrolling sideways, no
metric value, label or Go-to link is cut to "…", and on a multi-turn pair the Review page
shows the question and both answers above its action bar at 1,440 x 900, with the score
radios on one row at 1,024 px."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.log import schema
from shadowtutor.review import workflow
from shadowtutor.tables import ReviewItem
from tests.support import browser
from tests.support.browser import app_server, browser_page, login, open_page

pytestmark = pytest.mark.browser

# Elements (or a child) whose text is wider than their box: cut to "…".
_CUT = """(selector) => [...document.querySelectorAll(selector)]
    .filter(el => [el, ...el.querySelectorAll('*')]
        .some(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1))
    .map(el => el.textContent)"""
# Tables whose columns overflow their width (a sideways scroll hides the last ones).
_WIDE = """() => [...document.querySelectorAll('[data-testid="stMain"] .stDataFrame, '
    + '[data-testid="stMain"] [data-testid="stDataFrame"]')]
    .map(df => df.querySelector('.dvn-scroller'))
    .filter(s => s && s.scrollWidth > s.clientWidth + 1)
    .map(s => [s.scrollWidth, s.clientWidth])"""
METRICS = '[data-testid="stMetricValue"], [data-testid="stMetricLabel"]'


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = browser.demo_home(tmp_path_factory.mktemp("reading"), pairs=1500, days=20, seed=8)
    messages: list[dict] = [{"role": "system", "content": "Be brief."}]
    for i in range(3):
        messages += [{"role": "user", "content": f"Earlier question {i}, " + "words " * 40},
                     {"role": "assistant", "content": "An earlier answer. " * 12}]  # fmt: skip
    messages.append({"role": "user", "content": "And the question now?"})
    record = schema.make_record(
        id="multi-turn", ts=datetime.now(UTC) - timedelta(hours=1), source="demo",
        category="casual", language="en", messages=messages,
        teacher={"model": "gpt-4o-mini", "response": "TEACHER-ANSWER " + "fine " * 30},
        student={"model": "llama3.1:8b", "response": "STUDENT-ANSWER " + "good " * 30},
        similarity={"method": "lexical", "score": 0.5},
    )  # fmt: skip
    url = f"sqlite:///{home / 'shadowtutor.db'}"
    with db.session_scope(url) as s:
        workflow.enqueue_records(session=s, records=[record], enqueued_by=permissions.SYSTEM)
        item = s.exec(select(ReviewItem).where(ReviewItem.pair_id == "multi-turn")).one()
        item.priority = 1e9  # served first
        s.add(item)
    return home


@pytest.mark.parametrize("width", [1440, 1024])
def test_readiness_and_home_read_whole(demo_home: Path, width: int) -> None:
    with app_server(demo_home) as base, browser_page(width=width, height=900) as page:
        login(page, base, "admin", "demo-admin")
        page.get_by_text("Go to").wait_for()
        browser.wait_idle(page)
        assert page.evaluate(_CUT, METRICS) == []
        assert (
            page.evaluate(_CUT, '[data-testid="stMain"] [data-testid="stPageLink-NavLink"]') == []
        )
        open_page(page, "Readiness", wait_for_text="Audit trail")
        assert page.evaluate(_CUT, METRICS) == []
        assert page.evaluate(_WIDE) == []  # estimate, bound, threshold, n, method all show
        open_page(page, "Export", wait_for_text="Export training data")
        assert page.evaluate(_CUT, METRICS) == []


def _bottom(page, text: str) -> float:  # noqa: ANN001
    box = page.get_by_text(text).first.bounding_box()
    assert box is not None, text
    return box["y"] + min(box["height"], 40)  # the answer's first lines


def test_review_shows_both_answers_above_the_bar_on_a_multi_turn_pair(demo_home: Path) -> None:
    with app_server(demo_home) as base, browser_page(width=1440, height=900) as page:
        login(page, base, "reviewer", "demo-reviewer")
        page.locator('[data-testid="stSidebar"]').get_by_role(
            "link", name="Review", exact=True
        ).click()
        page.get_by_text("Your judgement").wait_for()
        browser.wait_idle(page)
        assert page.get_by_text("Earlier turns (6 messages)").is_visible()
        bar = page.locator(".st-key-review-actions").bounding_box()
        assert bar is not None
        for text in ("And the question now?", "STUDENT-ANSWER", "TEACHER-ANSWER"):
            assert _bottom(page, text) <= bar["y"], text
        page.screenshot(path=str(browser.SCREENSHOTS / "review-multi-turn.png"))


def test_review_score_radios_keep_one_row_at_1024px(demo_home: Path) -> None:
    with app_server(demo_home) as base, browser_page(width=1024, height=900) as page:
        login(page, base, "reviewer", "demo-reviewer")
        page.locator('[data-testid="stSidebar"]').get_by_role(
            "link", name="Review", exact=True
        ).click()
        page.get_by_text("Your judgement").wait_for()
        browser.wait_idle(page)
        groups = page.locator('.st-key-review-actions [role="radiogroup"]')
        assert groups.count() == 3
        for i in range(3):
            box = groups.nth(i).bounding_box()
            assert box is not None and box["height"] <= 40, (i, box)  # wrapped: 61 px

"""The Review page on a tools pair in headless Chromium: the two answers' tool calls side by
side as JSON code, the tool definitions folded at hand, hostile text inert; a screenshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowtutor import db
from shadowtutor.accounts import permissions, users
from shadowtutor.log.write import LogWriter
from shadowtutor.review import taxonomy, workflow
from shadowtutor.tables import UserCreate
from tests.pages.test_review_tools import json_record, tools_record
from tests.support.browser import SCREENSHOTS, app_server, browser_page, login, wait_idle

pytestmark = pytest.mark.browser


def test_a_tools_pair_is_reviewed_as_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'shadowtutor.db'}"
    db.upgrade(url)
    recs = [tools_record(), json_record()]
    with LogWriter(home / "logs") as writer:
        writer.append_many(recs)
    with db.session_scope(url) as s:
        users.add_user(
            session=s,
            user=UserCreate(username="rita", role="reviewer", password="password-123"),
            actor_id=permissions.SYSTEM,
        )
        taxonomy.seed_default_tags(session=s, actor_id=permissions.SYSTEM)
        for rec in recs:
            workflow.enqueue_records(
                session=s, records=[rec], strategy="random", enqueued_by=permissions.SYSTEM
            )
    with app_server(home) as base, browser_page(height=2300) as page:
        login(page, base, "rita", "password-123")
        page.locator('[data-testid="stSidebar"]').get_by_role(
            "link", name="Review", exact=True
        ).click()
        page.get_by_text("Tool calls (1)").first.wait_for()
        wait_idle(page)
        page.locator("code", has_text='"people": 2').first.wait_for()  # highlighted, shown
        page.wait_for_timeout(800)  # a tall window: the two answers' calls above the bar
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "review-tools.png"))
        page.get_by_text("Tool definitions (2)").click()
        wait_idle(page)
        assert page.get_by_text("were not kept with this pair").count() == 0
        code = " ".join(page.locator("code").all_inner_texts())
        assert '"name": "book_table"' in code and '"people": 2' in code
        assert '"description": "Book a table.' in code  # the definitions, opened
        assert page.locator("img[src*='evil.example']").count() == 0  # inert, not rendered
        assert page.locator("script", has_text="alert(1)").count() == 0

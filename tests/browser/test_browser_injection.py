"""Logged values are untrusted: Markdown in any of them (pair id, category, language, model
names, similarity method, conversation id, answers, errors, tags of the caller) must never make
a reviewer's or a manager's browser fetch anything. Every page is opened as every role over a
log whose every field carries an image pointing at a tracking server on loopback, with a
teacher that has no price (so the Cost page's "Spend unknown" message names the model: issue
27 item 2); the tracking server must see no request at all."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.app.registry import pages_for
from shadowtutor.log import schema, write
from shadowtutor.review import workflow
from tests.support import browser
from tests.support.apputil import make_user

pytestmark = pytest.mark.browser
HEADINGS = {"home": "ShadowTutor", "export": "Export training data"}  # else the menu title


class _Tracker(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tracker() -> Iterator[str]:
    _Tracker.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tracker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _bait(base: str, field: str) -> str:
    return (
        f"![x]({base}/{field}.png) <img src='{base}/{field}-html.png'> "
        f"[link]({base}/{field}-link) :red[{field}]"
    )


def _poisoned_home(folder: Path, base: str) -> Path:
    home = folder / "home"
    url = f"sqlite:///{home / 'shadowtutor.db'}"
    db.upgrade(url)
    admin = make_user(url, "admin", "admin")
    for role in permissions.ROLES:
        make_user(url, role, role)
    now = datetime.now(UTC)
    records = [
        schema.make_record(
            id=f"p{i}-![]({base}/id.png)",  # the whole bait would pass MAX_ID_LENGTH
            messages=[{"role": "user", "content": _bait(base, "prompt")}],
            teacher={
                "model": _bait(base, "teacher-model"),
                "provider": _bait(base, "provider"),
                "response": _bait(base, "teacher-answer"),
                "latency_ms": 900.0,
                "cost_usd": None,  # unpriced: the Cost page names the model in its error
            },
            student={
                "model": _bait(base, "student-model"),
                "response": None if i % 3 == 0 else _bait(base, "student-answer"),
                "error": _bait(base, "error") if i % 3 == 0 else None,
                "latency_ms": 300.0,
            },
            ts=now - timedelta(hours=i),
            category=_bait(base, "category"),
            language=_bait(base, "language"),
            conversation_id=_bait(base, "conversation"),
            user_hash=_bait(base, "user"),
            similarity={"method": _bait(base, "method"), "score": 0.5},
            metadata={"prompt_id": _bait(base, "metadata")},
        )
        for i in range(30)
    ]
    with write.LogWriter(home / "logs") as w:
        w.append_many(records)
    with db.session_scope(url) as session:
        workflow.enqueue_records(session=session, records=records, enqueued_by=admin)
    return home


def _hover(page, tooltip) -> None:  # noqa: ANN001
    """Hover a help icon until its tooltip can open: on a loaded host the page may still be
    laying out (a heading drawn over the icon for a moment), so a blocked hover is retried."""
    for attempt in range(3):
        try:
            tooltip.hover(timeout=10_000)
            return
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
            page.mouse.move(1, 1)
            browser.wait_idle(page)


@pytest.mark.parametrize("role", permissions.ROLES)
def test_no_page_fetches_anything_a_logged_value_points_at(
    tmp_path: Path, tracker: str, role: str
) -> None:
    home = _poisoned_home(tmp_path, tracker)
    with browser.app_server(home) as base, browser.browser_page(height=1400) as page:
        page.goto(base)
        page.locator("input[aria-label=Username]").fill(role)
        page.locator("input[type=password]").fill(f"password-{role}")
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("Log out").wait_for()
        for spec in pages_for(role):
            sidebar = page.locator('[data-testid="stSidebar"]')
            sidebar.get_by_role("link", name=spec.title, exact=True).click()
            heading = HEADINGS.get(spec.key, spec.title)
            page.locator("h1").filter(has_text=heading).first.wait_for()
            browser.wait_idle(page)
            assert not page.locator('[data-testid="stException"]').count(), spec.key
            for tooltip in page.locator('[data-testid="stTooltipIcon"]').all()[:20]:
                if tooltip.is_visible():  # help tooltips render Markdown only when shown
                    _hover(page, tooltip)
            page.mouse.move(1, 1)  # an open tooltip covers the menu's next link
            page.wait_for_timeout(300)
    assert _Tracker.hits == [], f"{role}: pages fetched logged URLs: {sorted(set(_Tracker.hits))}"

"""The Export page in headless Chromium on demo data: count, export, report, downloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shadowtutor.export import jobs
from tests.support import browser
from tests.support.browser import SCREENSHOTS, app_server, browser_page, login, open_page, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return browser.demo_home(tmp_path_factory.mktemp("browser-export"), pairs=4000, days=30, seed=3)


def test_admin_exports_demo_data(demo_home: Path) -> None:
    with app_server(demo_home) as base, browser_page(height=1480) as page:
        login(page, base, "admin", "demo-admin")
        open_page(page, "Export", wait_for_text="Matching reviewed pairs")
        page.get_by_role("button", name="Export").click()
        page.get_by_text("written to").wait_for()
        page.locator('[data-testid="stDownloadButton"]').last.wait_for()
        wait_idle(page)
        page.wait_for_timeout(2000)  # the tables draw on a canvas after the script ends
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "export.png"), full_page=True)
        downloads = page.locator('[data-testid="stDownloadButton"]').all_inner_texts()
        assert any("sft_train.jsonl" in d for d in downloads), downloads
        with page.expect_download() as info:
            page.locator('[data-testid="stDownloadButton"]').filter(
                has_text="manifest.json"
            ).click()
        downloaded = Path(info.value.path()).read_bytes()
    folder = next((demo_home / "exports").iterdir())
    assert downloaded == (folder / "manifest.json").read_bytes()
    assert jobs.verify_folder(folder) == []
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["created_by"] == "admin" and manifest["counts"]["examples"] > 0
    for split in jobs.SPLITS:
        for line in (folder / f"sft_{split}.jsonl").read_text().splitlines():
            jobs.check_chat(json.loads(line)["messages"])

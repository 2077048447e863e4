"""Start the real app and drive it in headless Chromium (Debian's, through Playwright).

    with app_server(home) as base:              # streamlit on a free port, SHADOWTUTOR_HOME=home
        with browser_page() as page:
            login(page, base, "admin", "demo-admin")
            open_page(page, "Cost", wait_for_text="Spend")
            page.screenshot(path="docs/screenshots/cost.png", full_page=True)

Never run `playwright install`: it downloads a browser, which fails here. CI installs Debian's
`chromium` package when it is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SHADOWTUTOR_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_server(
    home: Path,
    extra_env: dict[str, str] | None = None,
    *,
    python: str = sys.executable,
    cwd: Path = ROOT,
) -> Iterator[str]:
    """Run `shadowtutor app` (as a user would) with SHADOWTUTOR_HOME=home; yield its base URL.
    ``python`` is the interpreter whose installed shadowtutor runs (the packaging test passes
    a fresh venv's)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTUTOR_")}
    env.pop("DATABASE_URL", None)
    env.update({"SHADOWTUTOR_HOME": str(home), **(extra_env or {})})
    cmd = [python, "-m", "shadowtutor.cli", "app", "--port", str(port)]
    log = open(home.parent / f"streamlit-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start; see {log.name}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def browser_page(width: int = 1440, height: int = 1000) -> Iterator:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        import pytest

        pytest.fail(
            f"browser tests need Debian's Chromium at {CHROMIUM}: apt-get install -y chromium"
        )

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            # a context of its own, so that a test can open a second tab in it (same cookies)
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def login(page, base: str, username: str, password: str) -> None:  # noqa: ANN001
    page.goto(base)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Log out").wait_for()


def open_page(page, title: str, wait_for_text: str) -> None:  # noqa: ANN001
    """Open a page from the sidebar menu (a reload would start a new, logged-out session) and
    wait until ``wait_for_text`` shows and the app is idle."""
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name=title).click()
    # the first visible match: the same words may also sit in a closed expander or a help text
    page.get_by_text(wait_for_text).filter(visible=True).first.wait_for()
    wait_idle(page)


# The script has finished (the app hides Streamlit's status widget, so its absence proved
# nothing) and no element is still loading its code.
_IDLE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector('[data-testid="stStatusWidget"]')
    && !document.querySelector('[data-testid="stMain"] [data-testid^="stSkeleton"]');
}"""


def wait_idle(page) -> None:  # noqa: ANN001
    """Wait until Streamlit has finished running the script and drawn what it sent."""
    page.wait_for_function(_IDLE, timeout=60_000)
    page.wait_for_timeout(500)
    page.wait_for_function(_IDLE, timeout=60_000)  # a rerun may have started meanwhile


def demo_home(folder: Path, *, pairs: int, days: int, seed: int) -> Path:
    """A ShadowTutor home under ``folder`` with a migrated database and demo data."""
    from shadowtutor import db
    from shadowtutor.demo import generate

    home = folder / "home"
    url = f"sqlite:///{home / 'shadowtutor.db'}"
    db.upgrade(url)
    generate.build(url=url, log_dir=home / "logs", pairs=pairs, days=days, seed=seed)
    return home

"""The wheel, installed into a fresh venv in another directory, runs the demo, the dashboard
(theme included) and the wrapper, and puts nothing generic in site-packages."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import browser

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Installed:
    python: Path
    site: Path  # the fresh venv's site-packages
    before: set[str]  # what it held before the wheel went in


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh venv with only the built wheel installed.

    The dependencies come from this interpreter's site-packages through a ``.pth`` line (no
    network); ``.pth`` files there are not processed, so this checkout's editable install
    stays invisible to the fresh venv."""
    work = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "-w", str(work / "dist"), str(ROOT)], cwd=work)  # fmt: skip
    (wheel,) = (work / "dist").glob("shadowtutor-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=work)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=work).stdout.strip())  # fmt: skip
    before = {p.name for p in site.iterdir()}
    (site / "zz_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], cwd=work)
    return Installed(python, site, before)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTUTOR_")}
    env.pop("DATABASE_URL", None)
    env.pop("PYTHONPATH", None)
    return env | {"SHADOWTUTOR_HOME": str(home)}


def test_site_packages_holds_only_shadowtutor(installed: Installed) -> None:
    site = installed.site
    new = {p.name for p in site.iterdir()} - installed.before - {"zz_deps.pth"}
    tops = {n for n in new if not n.endswith(".dist-info") and n != "__pycache__"}
    assert tops == {"shadowtutor"}, tops
    assert (site / "shadowtutor" / "pages" / "review.py").is_file()
    assert (site / "shadowtutor" / "app" / "theme" / "config.toml").is_file()
    assert not (site / "shadowtutor" / "app" / "theme" / "secrets.toml").exists()
    for generic in ("core", "app", "pages", "migrations"):
        done = subprocess.run([str(installed.python), "-c", f"import {generic}"], cwd=site,
                              capture_output=True, env=_env(site))  # fmt: skip
        assert done.returncode != 0, f"`import {generic}` works from the installed wheel"


def test_packages_list_matches_the_tree() -> None:
    """pyproject lists its packages by hand (the folders are mapped): none may be missing."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {"shadowtutor." + ".".join(p.parent.relative_to(ROOT / "core" / "shadowtutor").parts)
             for p in (ROOT / "core" / "shadowtutor").rglob("__init__.py")}  # fmt: skip
    found = {name.rstrip(".") for name in found}
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"


def test_demo_and_wrapper_run_outside_the_checkout(installed: Installed, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home)
    command = installed.python.parent / "shadowtutor"
    out = _run([str(command), "demo", "--no-serve", "--pairs", "400", "--days", "5"],
               cwd=tmp_path, env=env).stdout  # fmt: skip
    assert "demo-admin" in out
    assert list((home / "logs").rglob("*.jsonl")) or list((home / "logs").rglob("*.parquet"))

    script = """
import json, openai, shadowtutor
from shadowtutor.testing.modelserver import ModelServer
with ModelServer() as teacher, ModelServer() as student:
    import os
    os.environ["SHADOWTUTOR_STUDENT_BASE_URL"] = student.url
    os.environ["SHADOWTUTOR_STUDENT_MODEL"] = "llama3"
    collector = shadowtutor.ShadowCollector()
    client = collector.wrap(openai.OpenAI(base_url=teacher.url + "/v1", api_key="k"))
    reply = client.chat.completions.create(model="gpt-4o-mini",
                                           messages=[{"role": "user", "content": "Ciao!"}])
    collector.flush(timeout=30)
    print(json.dumps({"answer": reply.choices[0].message.content,
                      "logged": collector.stats()["logged"], "file": shadowtutor.__file__}))
"""
    done = _run([str(installed.python), "-c", script], cwd=tmp_path, env=env)
    result = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    assert result["answer"]
    assert result["logged"] == 1
    assert str(ROOT) not in result["file"]


@pytest.mark.browser
def test_dashboard_runs_from_the_wheel_with_its_theme(installed: Installed, tmp_path: Path) -> None:
    home = browser.demo_home(tmp_path, pairs=400, days=5, seed=3)
    with browser.app_server(home, python=str(installed.python), cwd=tmp_path) as base:
        with browser.browser_page() as page:
            page.goto(base)
            log_in = page.get_by_role("button", name="Log in")
            # The theme's primaryColor (#2563eb) colours the primary button: config applied.
            assert log_in.evaluate("b => getComputedStyle(b).backgroundColor") == (
                "rgb(37, 99, 235)"
            )
            browser.login(page, base, "admin", "demo-admin")
            page.get_by_role("heading", name="ShadowTutor").wait_for()
            browser.wait_idle(page)
            assert page.locator('[data-testid="stException"]').count() == 0

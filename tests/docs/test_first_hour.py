"""A new user's first hour: the demo says what it does and where to log in, the demo home's
login page names the accounts, and every group's help leads to the docs."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from shadowtutor.cli import DOCS_URL, main, reference
from shadowtutor.demo import home as demo_home
from tests.support.apputil import MAIN, texts


def groups() -> list[click.Context]:
    root = click.Context(main, info_name="shadowtutor")
    return [c for c in reference._walk(root) if isinstance(c.command, click.Group)]


@pytest.mark.parametrize("ctx", groups(), ids=lambda c: c.command_path)
def test_every_groups_help_ends_with_a_docs_link(home: Path, ctx: click.Context) -> None:
    args = ctx.command_path.split()[1:]
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0
    last = " ".join(result.output.strip().split("\n\n")[-1].split())
    anchor = "" if not args else "reference/cli/#" + reference._anchor(ctx.command_path)
    assert last.startswith(f"Docs: {DOCS_URL}/{anchor} ")
    assert "make docs" in last


def test_the_demo_says_what_it_does_and_where_to_log_in(home: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--no-serve", "--pairs", "1500", "--days", "12"])
    assert result.exit_code == 0, result.output
    steps = re.findall(r"^\[\s*[\d.]+ s\] (.+)$", result.output, flags=re.M)
    assert steps[0] == "migrating the database and creating the demo accounts"
    assert "generating 1,500 pairs over 12 days" in steps
    assert any(s.startswith("writing ") and "closed days to Parquet" in s for s in steps)
    assert steps[-1] == "evaluating the deploy gate for 3 demo students"
    assert "demo data: 1,500 pairs over 12 days" in result.output
    for line in ("admin / demo-admin", "reviewer / demo-reviewer", "manager / demo-manager"):
        assert line in result.output
    assert "shadowtutor app --port 8501" in result.output  # how to start what was not started
    assert "browser" not in result.output  # it opens none
    assert [a.username for a in demo_home.accounts(home)] == ["admin", "reviewer", "manager"]


def test_generating_reports_a_counter_every_5000_pairs(home: Path) -> None:
    from shadowtutor import db
    from shadowtutor.config import Settings
    from shadowtutor.demo import generate

    settings = Settings.load()
    db.upgrade(settings.db_url)
    said: list[str] = []
    generate.build(
        url=settings.db_url, log_dir=settings.log_path, pairs=10_500, days=8, progress=said.append
    )
    assert "  5,000 of 10,500 pairs" in said and "  10,000 of 10,500 pairs" in said


def test_a_demo_homes_login_page_names_the_accounts(migrated) -> None:
    demo_home.mark(
        migrated.home_path,
        [
            demo_home.DemoAccount("admin", "admin", "demo-admin"),
            demo_home.DemoAccount("manager", "manager", "demo-manager"),
        ],
    )
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert "Demo data: log in with one of these accounts" in texts(at.info)
    shown = at.code[0].value
    assert "admin     admin / demo-admin" in shown and "manager   manager / demo-manager" in shown
    assert at.text_input[0].label == "Username"  # the form is still the first input


def test_a_real_homes_login_page_shows_no_password(migrated) -> None:
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.info and not at.code
    assert at.text_input[0].label == "Username"


def test_an_unreadable_marker_names_no_account(tmp_path: Path) -> None:
    (tmp_path / demo_home.MARKER).write_text("{not json")
    assert demo_home.accounts(tmp_path) == []
    assert demo_home.accounts(tmp_path / "missing") == []

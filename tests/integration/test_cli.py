"""The foundation's CLI, run as a user would (click's runner, real SQLite and log folder)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from shadowtutor.cli import main
from shadowtutor.log import schema


def run(*args: str, input: str | None = None):  # noqa: A002
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_help_lists_the_command_groups(home: Path) -> None:
    out = run("--help").output
    for group in ("db", "users", "logs", "demo", "app"):
        assert f"  {group} " in out


def test_commands_refuse_an_unmigrated_database_naming_the_fix(home: Path) -> None:
    result = run("users", "list")
    assert result.exit_code == 1
    assert "Run `shadowtutor db upgrade`" in result.output and "Traceback" not in result.output
    assert run("db", "status").exit_code == 1


def test_db_and_users_lifecycle(home: Path) -> None:
    assert "at head" in run("db", "upgrade").output
    assert run("db", "status").exit_code == 0
    r = run("users", "add", "anna", "--role", "reviewer", "--password", "long-password")
    assert r.exit_code == 0 and "added anna (reviewer)" in r.output
    assert run("users", "set-role", "anna", "admin").exit_code == 0
    assert run("users", "disable", "anna").exit_code == 0
    listing = run("users", "list").output
    assert "anna" in listing and "admin" in listing and "disabled" in listing
    bad = run("users", "add", "bob", "--role", "boss", "--password", "long-password")
    assert bad.exit_code == 2 and "'boss' is not one of" in bad.output
    short = run("users", "add", "bob", "--role", "admin", "--password", "short")
    assert short.exit_code == 1 and "at least 8 characters" in short.output


def test_logs_import_validate_compact(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "chat.jsonl"
    good = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    }
    old = schema.make_record(
        messages=[{"role": "user", "content": "Old"}],
        teacher={"model": "gpt-4o", "response": "Old answer"},
        ts=schema.parse_ts("2025-01-02T03:04:05Z"),
    )
    src.write_text(json.dumps(good) + "\n{oops\n" + schema.dumps(old) + "\n")
    result = run("logs", "import", str(src), "--teacher-model", "gpt-4o-mini")
    assert result.exit_code == 1  # some lines were bad
    assert f"{src}:2: not valid JSON" in result.output
    assert "imported 2, already present 0, bad lines 1" in result.output
    assert "imported 0, already present 2" in run("logs", "import", str(src)).output
    assert run("logs", "validate").output.startswith("2 valid records, 0 bad lines")
    compacted = run("logs", "compact").output
    assert "compacted 1 day(s): 1 rows written" in compacted  # today stays JSONL


def test_demo_generates_the_default_20000_pairs(home: Path) -> None:
    result = run("demo", "--no-serve")
    assert result.exit_code == 0, result.output
    assert "demo data: 20,000 pairs over 60 days" in result.output
    assert "deploy gate on the demo: GO (eligible: greeting, casual)" in result.output
    assert "admin / demo-admin" in result.output and "manager / demo-manager" in result.output
    again = run("demo", "--no-serve")
    assert "no demo data generated" in again.output and "already holds data" in again.output


def test_db_upgrade_seeds_the_default_tags_once(home: Path) -> None:
    from shadowtutor.review.tags import DEFAULT_TAGS

    first = run("db", "upgrade").output
    assert f"added the {len(DEFAULT_TAGS)} default review tags" in first
    listing = run("review", "tags", "list").output
    assert all(name in listing for name, _, _ in DEFAULT_TAGS)
    assert "default review tags" not in run("db", "upgrade").output  # a shaped taxonomy stays

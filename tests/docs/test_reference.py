"""The docs pages made from the code stay equal to what the code makes now
(`make docs-generate` rewrites them)."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from shadowtutor import auth
from shadowtutor.cli import main, reference

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_cli_page_is_what_the_commands_say(home: Path) -> None:
    page = (DOCS / "reference" / "cli.md").read_text()
    assert page == reference.page(), "docs/reference/cli.md drifted: run `make docs-generate`"


def test_the_settings_table_is_what_shadowtutor_config_prints(home: Path) -> None:
    printed = CliRunner().invoke(main, ["config", "--markdown"]).output
    page = (DOCS / "configuration.md").read_text()
    assert reference.table_in(page, "settings-table") == printed.strip(), (
        "the settings table of docs/configuration.md drifted: run `make docs-generate`"
    )


def test_the_permissions_table_is_the_librarys() -> None:
    page = (DOCS / "security.md").read_text()
    assert reference.table_in(page, "permissions-table") == auth.markdown_table().strip()


def test_every_command_and_group_has_a_section_with_a_working_anchor(home: Path) -> None:
    page = reference.page()
    for ctx in reference._walk(click.Context(main, info_name="shadowtutor")):
        path = ctx.command_path
        assert f"## `{path}`" in page
        if path != "shadowtutor":
            assert f"(#{reference._anchor(path)})" in page  # linked from its group's table


def test_splice_replaces_only_between_the_markers() -> None:
    text = "a\n<!-- t:start -->\nold\n<!-- t:end -->\nb\n"
    assert reference.splice(text, "t", "new") == "a\n<!-- t:start -->\nnew\n<!-- t:end -->\nb\n"
    assert reference.table_in(reference.splice(text, "t", "new"), "t") == "new"

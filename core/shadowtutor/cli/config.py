"""`shadowtutor config`: the settings in effect."""

from __future__ import annotations

from dataclasses import fields

import click

from shadowtutor.cli import main, settings_of
from shadowtutor.config import Settings

_SECRET = ("API_KEY", "DATABASE_URL")


@main.command("config")
@click.option("--markdown", is_flag=True, help="Print the documentation table instead.")
@click.pass_context
def config_cmd(ctx: click.Context, markdown: bool) -> None:
    """Show every setting, its environment variable and its value in effect."""
    if markdown:
        click.echo(settings_table())
        return
    settings = settings_of(ctx)
    for f in fields(Settings):
        env = f.metadata["env"]
        value = getattr(settings, f.name)
        if value and any(s in env for s in _SECRET) and "sqlite" not in str(value):
            value = "***"
        click.echo(f"{env:<38} {value}")
    click.echo(f"{'(database)':<38} {'***' if settings.database_url else settings.db_url}")
    click.echo(f"{'(log folder)':<38} {settings.log_path}")


def settings_table() -> str:
    """The docs' settings table (Configuration page), one row per setting of :class:`Settings`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, default, doc in Settings.documented():
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        rows.append(f"| `{name}` | {shown} | {doc} |")
    return "\n".join(rows)

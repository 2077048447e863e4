"""ShadowTutor: shadow a paid cloud LLM with a local model, review the pairs, watch cost,
decide with evidence when the local model may serve, and export training data.

Settings come from environment variables (see the README's settings table); the defaults use
a SQLite file and a log folder under ~/.shadowtutor.
"""

from __future__ import annotations

import importlib
from contextlib import AbstractContextManager
from typing import Any

import click
from sqlmodel import Session

from shadowtutor import (
    db as database,  # not `db`: the `shadowtutor.cli.db` submodule takes that name
)
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError

# One module per command group; each registers itself on ``main``.
COMMAND_MODULES = [
    "db",
    "users",
    "logs",
    "demo",
    "app",
    "config",
    "export",
    "review",
    "collect",
    "gate",
    "student",
    "judge",
]


class _Group(click.Group):
    """Turns errors a user can fix into a one-line message instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShadowTutorError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, help=__doc__)
@click.version_option(package_name="shadowtutor")
@click.pass_context
def main(ctx: click.Context) -> None:
    ctx.obj = Settings.load()


def settings_of(ctx: click.Context) -> Settings:
    """The settings loaded by the top-level command."""
    return ctx.find_root().obj


def session_of(ctx: click.Context) -> AbstractContextManager[Session]:
    """A database session, after checking the schema is at head (else a message naming
    `shadowtutor db upgrade`)."""
    url = settings_of(ctx).db_url
    database.require_schema(url)
    return database.session_scope(url)


for _name in COMMAND_MODULES:
    importlib.import_module(f"shadowtutor.cli.{_name}")

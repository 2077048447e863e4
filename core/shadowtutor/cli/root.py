"""ShadowTutor: shadow a paid cloud LLM with a local model, review the pairs, watch cost,
decide with evidence when the local model may serve, and export training data.

Settings come from environment variables (see the Configuration page of the docs); the defaults use
a SQLite file and a log folder under ~/.shadowtutor.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import click
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.accounts.users import require_user
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError

# Where `make docs` serves the docs site from a checkout (the pages are in docs/).
DOCS_URL = "http://127.0.0.1:8000"


class Group(click.Group):
    """Turns errors a user can fix into a one-line message instead of a traceback, and ends
    its help with a link to its page of the docs. Its subgroups are of this class too."""

    group_class = type

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        names = ctx.command_path.split()[1:]  # the root's own name may be anything
        page = f"/reference/cli/#{'-'.join(['shadowtutor', *names])}" if names else "/"
        formatter.write_paragraph()
        formatter.write_text(
            f"Docs: {DOCS_URL}{page} (`make docs` in a checkout of ShadowTutor serves them; "
            "the pages are in docs/)."
        )

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShadowTutorError as exc:
            raise click.ClickException(str(exc)) from None
        except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DataError) as exc:
            # a database a user can fix (unreachable, wrong password, a value too long)
            url = ctx.obj.db_url if isinstance(ctx.obj, Settings) else None
            raise click.ClickException(db.explain(exc, url)) from None


@click.group(cls=Group, help=__doc__)
@click.version_option(package_name="shadowtutor")
@click.pass_context
def main(ctx: click.Context) -> None:
    ctx.obj = Settings.load()


def settings_of(ctx: click.Context) -> Settings:
    """The settings loaded by the top-level command."""
    settings: Settings = ctx.find_root().obj  # click types Context.obj as Any
    return settings


def session_of(ctx: click.Context) -> AbstractContextManager[Session]:
    """A database session, after checking the schema is at head (else a message naming
    `shadowtutor db upgrade`)."""
    url = settings_of(ctx).db_url
    db.require_schema(url)
    return db.session_scope(url)


def actor_of(session: Session, username: str | None) -> permissions.Actor:
    """The acting user a command names with ``--by``/``--as``; without one, the machine's
    operator (``permissions.SYSTEM``), who may do what needs no named account (see the Security
    and roles page of the docs)."""
    if not username:
        return permissions.SYSTEM
    return require_user(session=session, username=username)


BY = click.option(
    "--by",
    "by",
    metavar="USERNAME",
    help="Account to act as (checked against its role); default: the operator.",
)

"""`shadowtutor db ...`: migrate and inspect the database."""

from __future__ import annotations

import click

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.cli.root import Group, settings_of


@click.group("db", cls=Group)
def db_group() -> None:
    """Database schema: migrate (Alembic) and show where it stands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database (DATABASE_URL, or the SQLite file) to the latest schema."""
    url = settings_of(ctx).db_url
    db.upgrade(url, revision)
    status = db.schema_status(url)
    click.echo(status.message())
    if status.ok:
        added = seed_tags_if_none(url)
        if added:
            click.echo(
                f"added the {added} default review tags (`shadowtutor review tags list` shows "
                "them; edit them on the Review queue page)"
            )


def seed_tags_if_none(url: str) -> int:
    """The default review tags on a database that has no tag at all (a fresh install), so
    reviewers can tag from the first pair; a taxonomy an admin has shaped is left alone."""
    from sqlmodel import select

    from shadowtutor.review import taxonomy
    from shadowtutor.tables import Tag

    with db.session_scope(url) as session:
        if session.exec(select(Tag.id).limit(1)).first() is not None:
            return 0
        return taxonomy.seed_default_tags(session=session, actor_id=permissions.SYSTEM)


@db_group.command("downgrade")
@click.argument("revision")
@click.pass_context
def downgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database down to REVISION (e.g. -1 for one step)."""
    url = settings_of(ctx).db_url
    db.downgrade(url, revision)
    click.echo(f"database now at revision {db.current_revision(url)}")


@db_group.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show the database's revision and whether it is at head; exit 1 when it is behind."""
    url = settings_of(ctx).db_url
    st = db.schema_status(url)
    click.echo(f"database: {_redact(url)}")
    click.echo(st.message())
    if not st.ok:
        ctx.exit(1)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)

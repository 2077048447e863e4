"""`shadowtutor users ...`: accounts and roles."""

from __future__ import annotations

import click

from shadowtutor.accounts import users
from shadowtutor.accounts.permissions import ROLES
from shadowtutor.cli.root import BY, Group, actor_of, session_of
from shadowtutor.tables import UserCreate


@click.group("users", cls=Group)
def users_group() -> None:
    """Accounts: admins review, approve and export; reviewers review; managers read."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", "display_name", default="", help="Display name.")
@click.password_option(help="Password (asked for when not given).")
@BY
@click.pass_context
def add(
    ctx: click.Context, username: str, role: str, display_name: str, password: str, by: str | None
) -> None:
    """Create an account (the first admin of a new database is added this way, by the
    operator; --by names an admin instead)."""
    with session_of(ctx) as session:
        user = users.add_user(
            session=session,
            user=UserCreate(
                username=username, role=role, display_name=display_name, password=password
            ),
            actor_id=actor_of(session, by),
        )
        click.echo(f"added {user.username} ({user.role})")


@users_group.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List accounts with their role and state."""
    with session_of(ctx) as session:
        for u in users.list_users(session=session):
            state = "disabled" if u.disabled else "active"
            click.echo(f"{u.username:<20} {u.role:<9} {state:<8} {u.display_name}")


@users_group.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@BY
@click.pass_context
def set_role(ctx: click.Context, username: str, role: str, by: str | None) -> None:
    """Change an account's role."""
    with session_of(ctx) as session:
        users.set_role(
            session=session, username=username, role=role, actor_id=actor_of(session, by)
        )
        click.echo(f"{username} is now {role}")


@users_group.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@BY
@click.pass_context
def disable(ctx: click.Context, username: str, enable: bool, by: str | None) -> None:
    """Disable an account (it can no longer log in); --enable undoes it."""
    with session_of(ctx) as session:
        users.set_disabled(
            session=session, username=username, disabled=not enable, actor_id=actor_of(session, by)
        )
        click.echo(f"{username} {'enabled' if enable else 'disabled'}")


@users_group.command("set-password")
@click.argument("username")
@click.password_option()
@BY
@click.pass_context
def set_password(ctx: click.Context, username: str, password: str, by: str | None) -> None:
    """Set an account's password."""
    with session_of(ctx) as session:
        users.set_password(
            session=session, username=username, password=password, actor_id=actor_of(session, by)
        )
        click.echo(f"password of {username} changed")

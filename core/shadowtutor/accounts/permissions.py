"""Who may do what: the role names and the one table of actions, checked by every write.

Every function in the library that changes the database calls :func:`require` with the acting
user first, whoever calls it (a page, the CLI or a script); pages and the app's menu read the
same table through :func:`allowed`. The model is datasette's single
``allowed(action, resource, actor)``.

The acting user is a user id or a :class:`~shadowtutor.tables.User`; it is looked up in the
database on every check, so a disabled account or a changed role takes effect at once.
:data:`SYSTEM` is the machine's operator: the person running the ``shadowtutor`` CLI on the
server, who already holds the database URL. The CLI uses it when no ``--by``/``--as`` account
is named (creating the first admin, cron's ``gate evaluate``, ``rollout kill`` from a shell),
and the demo builder uses it to create the demo accounts. Actions whose record names a
person's judgement (a review, an approval, an override, an export, a Playground pair) need a
real account even from the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlmodel import Session

from shadowtutor.errors import ShadowTutorError
from shadowtutor.tables import User

ADMIN: Final = "admin"
REVIEWER: Final = "reviewer"
MANAGER: Final = "manager"
ROLES: tuple[str, ...] = (ADMIN, REVIEWER, MANAGER)


@dataclass(frozen=True)
class Action:
    roles: tuple[str, ...]  # roles that may do it
    what: str  # "may not <what>"
    operator: bool  # may the machine's operator (SYSTEM) do it without an account?


ACTIONS: dict[str, Action] = {
    "review.submit": Action((ADMIN, REVIEWER), "claim, submit or edit reviews", False),
    "review.enqueue": Action((ADMIN,), "add pairs to the review queue", True),
    "tags.edit": Action((ADMIN,), "change the tag taxonomy", True),
    "budget.set": Action((ADMIN,), "set the monthly budget", True),
    "gate.approve": Action((ADMIN,), "evaluate, approve or revoke gate decisions", False),
    "gate.override": Action((ADMIN,), "override a NO-GO gate decision", False),
    "gate.epoch": Action((ADMIN,), "start a new evidence epoch for the gate", True),
    "rollout.advance": Action((ADMIN,), "advance the rollout to the next stage", True),
    "rollout.kill": Action(
        (ADMIN,), "roll back the rollout or pull or release the kill switch", True
    ),
    "export.run": Action((ADMIN,), "export training data", False),
    "playground.save": Action((ADMIN, REVIEWER), "save Playground turns as pairs", False),
    "router.manage": Action(
        (ADMIN,), "train, roll back or switch on a student's request router", True
    ),
    "students.manage": Action((ADMIN,), "register or retire students", True),
    "users.manage": Action((ADMIN,), "add accounts or change their role, state or password", True),
}


class PermissionDenied(ShadowTutorError, PermissionError):  # noqa: N818 (the name says it)
    """The acting user may not do this action; the message names the action, the roles that
    may, and what to do."""

    def __init__(self, message: str, *, action: str) -> None:
        super().__init__(message)
        self.action = action


class SystemActor:
    """The machine's operator (see the module docstring). Recorded as no user (``None``)."""

    id = None
    username = "system"
    role = None

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM: Final = SystemActor()

Actor = int | User | SystemActor


def _action(action: str) -> Action:
    try:
        return ACTIONS[action]
    except KeyError:
        raise ValueError(
            f"unknown action {action!r}; see shadowtutor.accounts.permissions.ACTIONS"
        ) from None


def roles_for(action: str) -> tuple[str, ...]:
    """The roles that may do ``action``."""
    return _action(action).roles


def allowed(role: str | None, action: str) -> bool:
    """May a user with ``role`` do ``action``? (For pages and menus; writes use require.)"""
    return role in _action(action).roles


def _plural(roles: tuple[str, ...]) -> str:
    return " and ".join(f"{r}s" for r in roles)


def require(session: Session, actor: Actor | None, action: str) -> User | SystemActor:
    """The acting user (re-read from the database), or :class:`PermissionDenied` when they may
    not do ``action``: unknown or disabled accounts, other roles, no actor at all, and the
    operator for actions that must name a person."""
    spec = _action(action)
    head = f"{spec.what} ({action}) is for {_plural(spec.roles)}"
    if actor is SYSTEM:
        if spec.operator:
            return SYSTEM
        raise PermissionDenied(
            f"{head} and must be done by a named account; in the CLI pass --by (or --as) USERNAME",
            action=action,
        )
    if actor is None:
        raise PermissionDenied(
            f"{head}: no acting user was given; log in, or in the CLI pass --by (or --as) USERNAME",
            action=action,
        )
    user_id = actor.id if isinstance(actor, User) else actor
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None:
        raise PermissionDenied(
            f"{head}; there is no user #{user_id}: `shadowtutor users list` shows who exists",
            action=action,
        )
    if user.disabled:
        raise PermissionDenied(
            f"the account {user.username!r} is disabled and may not {spec.what} ({action}); "
            f"an admin can enable it: shadowtutor users disable {user.username} --enable",
            action=action,
        )
    if user.role not in spec.roles:
        raise PermissionDenied(
            f"{user.username} is a {user.role}; only {_plural(spec.roles)} may {spec.what} "
            f"({action}). Ask an admin to do it, or to give you the role: "
            f"shadowtutor users set-role {user.username} {spec.roles[0]}",
            action=action,
        )
    return user


def actor_id(actor: User | SystemActor) -> int | None:
    """The id to record for an actor :func:`require` returned (``None`` for the operator)."""
    return actor.id


def markdown_table() -> str:
    """The README's permissions table, made from :data:`ACTIONS` (a test compares the two)."""
    lines = [
        "| action | " + " | ".join(ROLES) + " | CLI operator without an account | what it covers |",
        "| --- | " + " | ".join("---" for _ in ROLES) + " | --- | --- |",
    ]
    for name, spec in ACTIONS.items():
        marks = " | ".join("yes" if r in spec.roles else "-" for r in ROLES)
        operator = "yes" if spec.operator else "-"
        lines.append(f"| `{name}` | {marks} | {operator} | {spec.what} |")
    return "\n".join(lines)

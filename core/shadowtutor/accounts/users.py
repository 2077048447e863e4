"""Users, roles and passwords.

Passwords are hashed with scrypt (memory-hard, in the standard library): ``scrypt$n$r$p$salt$hash``.
Store functions are keyword-only and take the session, so callers own the transaction. Every
change names the acting user (``actor_id``) and needs ``users.manage`` (see ``permissions``); the
first admin of an empty database is added by the operator (``permissions.SYSTEM``, the CLI
without ``--by``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from sqlmodel import Session, select

from shadowtutor.accounts import permissions, sessions
from shadowtutor.accounts.permissions import ROLES, Actor
from shadowtutor.errors import ShadowTutorError
from shadowtutor.tables import User, UserCreate, row_id

_N, _R, _P = 2**14, 8, 1  # 16 MiB of memory per hash


class UserError(ShadowTutorError, ValueError):
    """A user operation that cannot be done; the message says what to fix."""


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 2**20)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=64 * 2**20,
        dklen=len(expected),
    )
    return hmac.compare_digest(actual, expected)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")


def add_user(*, session: Session, user: UserCreate, actor_id: Actor) -> User:
    permissions.require(session, actor_id, "users.manage")
    _check_role(user.role)
    if not user.username.strip():
        raise UserError("the username must not be empty")
    if len(user.password) < 8:
        raise UserError("the password must have at least 8 characters")
    if get_user(session=session, username=user.username):
        raise UserError(f"user {user.username!r} exists already")
    db_user = User(
        username=user.username.strip(),
        display_name=user.display_name or user.username,
        role=user.role,
        password_hash=hash_password(user.password),
    )
    session.add(db_user)
    session.flush()
    return db_user


def get_user(*, session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username.strip())).first()


def require_user(*, session: Session, username: str) -> User:
    user = get_user(session=session, username=username)
    if user is None:
        raise UserError(f"no user {username!r}; `shadowtutor users list` shows who exists")
    return user


def list_users(*, session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.username)))


def set_role(*, session: Session, username: str, role: str, actor_id: Actor) -> User:
    permissions.require(session, actor_id, "users.manage")
    _check_role(role)
    user = require_user(session=session, username=username)
    if user.role != role:  # the old role's open pages must not stay reachable
        sessions.revoke_user(session=session, user_id=row_id(user), reason="role change")
    user.role = role
    session.add(user)
    return user


def set_disabled(
    *, session: Session, username: str, disabled: bool = True, actor_id: Actor
) -> User:
    permissions.require(session, actor_id, "users.manage")
    user = require_user(session=session, username=username)
    if disabled:
        sessions.revoke_user(session=session, user_id=row_id(user), reason="disabled")
    user.disabled = disabled
    session.add(user)
    return user


def set_password(*, session: Session, username: str, password: str, actor_id: Actor) -> User:
    permissions.require(session, actor_id, "users.manage")
    if len(password) < 8:
        raise UserError("the password must have at least 8 characters")
    user = require_user(session=session, username=username)
    sessions.revoke_user(session=session, user_id=row_id(user), reason="password change")
    user.password_hash = hash_password(password)
    session.add(user)
    return user


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    """The user if the name and password match and the account is enabled, else None."""
    user = get_user(session=session, username=username)
    if user is None:
        hash_password(password)  # same work either way, so timing does not reveal names
        return None
    if user.disabled or not verify_password(password, user.password_hash):
        return None
    return user

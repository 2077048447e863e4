from __future__ import annotations

import pytest
from sqlmodel import Session

from shadowtutor.accounts import users
from shadowtutor.accounts.permissions import SYSTEM
from shadowtutor.accounts.users import UserError
from shadowtutor.tables import UserCreate


def add(session: Session, name: str = "anna", role: str = "reviewer", pw: str = "s3cret-pass"):
    return users.add_user(
        session=session, user=UserCreate(username=name, role=role, password=pw), actor_id=SYSTEM
    )


def test_password_is_stored_as_a_memory_hard_hash(session: Session) -> None:
    user = add(session)
    assert "s3cret-pass" not in user.password_hash
    assert user.password_hash.startswith("scrypt$16384$8$1$")
    assert users.verify_password("s3cret-pass", user.password_hash)
    assert not users.verify_password("s3cret-pasS", user.password_hash)


def test_authenticate(session: Session) -> None:
    add(session)
    assert users.authenticate(session=session, username="anna", password="s3cret-pass")
    assert users.authenticate(session=session, username="anna", password="wrong") is None
    assert users.authenticate(session=session, username="nobody", password="x") is None
    users.set_disabled(session=session, username="anna", actor_id=SYSTEM)
    assert users.authenticate(session=session, username="anna", password="s3cret-pass") is None


def test_roles_and_listing(session: Session) -> None:
    add(session, "bob", "manager")
    add(session, "ann", "admin")
    users.set_role(session=session, username="bob", role="reviewer", actor_id=SYSTEM)
    assert [(u.username, u.role) for u in users.list_users(session=session)] == [
        ("ann", "admin"),
        ("bob", "reviewer"),
    ]


@pytest.mark.parametrize(
    ("name", "role", "pw", "message"),
    [
        ("x", "owner", "long-enough", "unknown role 'owner'"),
        ("x", "admin", "short", "at least 8 characters"),
        ("  ", "admin", "long-enough", "must not be empty"),
    ],
)
def test_bad_input_says_what_to_fix(
    session: Session, name: str, role: str, pw: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        add(session, name, role, pw)


def test_duplicate_and_unknown_users(session: Session) -> None:
    add(session)
    with pytest.raises(UserError, match="exists already"):
        add(session)
    with pytest.raises(UserError, match="users list"):
        users.set_role(session=session, username="ghost", role="admin", actor_id=SYSTEM)

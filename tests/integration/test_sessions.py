"""Browser sessions: the handoff works once, the cookie is signed and expires, and logout,
a password change, a role change and disabling the account revoke it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from shadowtutor.accounts import sessions, users
from shadowtutor.accounts.permissions import SYSTEM
from shadowtutor.tables import UserCreate, WebSession, utcnow

KEY = "k" * 40


@pytest.fixture
def alice(session: Session) -> int:
    return users.add_user(
        session=session,
        user=UserCreate(username="alice", role="manager", password="pw-123456"),
        actor_id=SYSTEM,
    ).id


def _cookie(session: Session, user_id: int, hours: float = 12) -> tuple[int, str]:
    started = sessions.start(session=session, user_id=user_id, hours=hours)
    value, max_age = sessions.claim(session=session, handoff=started.handoff, key=KEY)
    assert 0 < max_age <= hours * 3600
    return started.session_id, value


def test_cookie_resolves_to_the_user(session: Session, alice: int) -> None:
    _, cookie = _cookie(session, alice)
    found = sessions.resolve(session=session, cookie=cookie, key=KEY)
    assert found is not None and found.user.username == "alice"


def test_handoff_works_once(session: Session, alice: int) -> None:
    started = sessions.start(session=session, user_id=alice, hours=1)
    assert sessions.claim(session=session, handoff=started.handoff, key=KEY) is not None
    assert sessions.claim(session=session, handoff=started.handoff, key=KEY) is None


def test_stale_handoff_is_refused(session: Session, alice: int) -> None:
    started = sessions.start(session=session, user_id=alice, hours=1)
    row = session.get(WebSession, started.session_id)
    row.handoff_expires_at = utcnow() - timedelta(seconds=1)
    session.add(row)
    assert sessions.claim(session=session, handoff=started.handoff, key=KEY) is None


def test_forged_or_foreign_key_cookie_is_refused(session: Session, alice: int) -> None:
    _, cookie = _cookie(session, alice)
    assert sessions.resolve(session=session, cookie=cookie, key="another-key" * 4) is None
    assert sessions.resolve(session=session, cookie="x" + cookie[1:], key=KEY) is None
    assert sessions.resolve(session=session, cookie=None, key=KEY) is None


def test_expired_session_is_refused(session: Session, alice: int) -> None:
    sid, cookie = _cookie(session, alice)
    row = session.get(WebSession, sid)
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.add(row)
    assert sessions.resolve(session=session, cookie=cookie, key=KEY) is None


def test_logout_revokes(session: Session, alice: int) -> None:
    sid, cookie = _cookie(session, alice)
    sessions.revoke(session=session, session_id=sid)
    assert sessions.resolve(session=session, cookie=cookie, key=KEY) is None
    assert sessions.active(session=session, session_id=sid) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda s: users.set_password(
            session=s, actor_id=SYSTEM, username="alice", password="new-password"
        ),
        lambda s: users.set_role(session=s, actor_id=SYSTEM, username="alice", role="reviewer"),
        lambda s: users.set_disabled(session=s, actor_id=SYSTEM, username="alice"),
    ],
    ids=["password", "role", "disabled"],
)
def test_account_changes_revoke_every_session(session: Session, alice: int, change) -> None:
    cookies = [_cookie(session, alice)[1] for _ in range(2)]
    change(session)
    session.flush()
    assert all(sessions.resolve(session=session, cookie=c, key=KEY) is None for c in cookies)


def test_setting_the_same_role_keeps_the_session(session: Session, alice: int) -> None:
    _, cookie = _cookie(session, alice)
    users.set_role(session=session, actor_id=SYSTEM, username="alice", role="manager")
    assert sessions.resolve(session=session, cookie=cookie, key=KEY) is not None


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/cost", "/cost"), ("//evil.example/x", "/"), ("https://evil.example", "/"), ("", "/")],
)
def test_safe_next(target: str, expected: str) -> None:
    assert sessions.safe_next(target) == expected


def test_secret_is_kept_private_in_the_home(tmp_path: Path) -> None:
    key = sessions.secret(configured="", home=tmp_path)
    assert len(key) > 40 and sessions.secret(configured="", home=tmp_path) == key
    assert (tmp_path / sessions.KEY_FILE).stat().st_mode & 0o077 == 0
    assert sessions.secret(configured="set-by-admin", home=tmp_path) == "set-by-admin"

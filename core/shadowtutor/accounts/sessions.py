"""Browser sessions of the app: signed, expiring, revocable.

The login form (a Streamlit page) cannot set an httponly cookie, so it starts a session here
and gets a one-time *handoff* token. The browser then visits the app's cookie route
(``app/server.py``, a Starlette route of Streamlit's own ``st.App``), which exchanges the
handoff for the session token and sets it as an ``HttpOnly; SameSite=Lax`` cookie. Every run
of the app reads the cookie (``st.context.cookies``) and :func:`resolve` checks it:

* the signature (itsdangerous, keyed by :func:`secret`) and its age,
* the stored session: not revoked, not expired,
* the account: still there and enabled.

Only SHA-256 digests of tokens are stored. Sessions are revoked on logout and, for all of a
user's sessions, on a password change, a role change and when the account is disabled
(``shadowtutor.accounts.users`` calls :func:`revoke_user`).
"""

from __future__ import annotations

import hashlib
import os
import secrets as _secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from itsdangerous import BadSignature, TimestampSigner
from sqlmodel import Session, col, select

from shadowtutor.tables import User, WebSession, as_utc, row_id, utcnow

COOKIE = "shadowtutor_session"
HANDOFF_SECONDS = 120
KEY_FILE = "session.key"


def secret(*, configured: str, home: Path) -> str:
    """The signing key: ``SHADOWTUTOR_SESSION_SECRET`` when set, else a random key kept in
    ``session.key`` in the home folder (created on first use, readable by its owner only).
    Several app processes sharing one home share the key."""
    if configured:
        return configured
    path = home / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(_secrets.token_urlsafe(48))
    return path.read_text().strip()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _signer(key: str) -> TimestampSigner:
    return TimestampSigner(key, salt="shadowtutor.session")


@dataclass(frozen=True)
class Started:
    session_id: int
    handoff: str  # one-time, for the cookie route


def start(*, session: Session, user_id: int, hours: float) -> Started:
    """A new session for ``user_id`` (after its password was checked) and its handoff token."""
    handoff = _secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(
        token_hash=_digest(_secrets.token_urlsafe(32)),  # replaced when the cookie is set
        user_id=user_id,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
        handoff_hash=_digest(handoff),
        handoff_expires_at=now + timedelta(seconds=HANDOFF_SECONDS),
    )
    session.add(row)
    session.flush()
    return Started(row_id(row), handoff)


def claim(*, session: Session, handoff: str, key: str) -> tuple[str, int] | None:
    """Exchange a handoff token (once, within two minutes) for the signed cookie value and its
    lifetime in seconds; None when it is unknown, used, stale or its session is revoked."""
    row = session.exec(
        select(WebSession).where(WebSession.handoff_hash == _digest(handoff))
    ).first()
    now = utcnow()
    if row is None or row.revoked_at is not None:
        return None
    row.handoff_hash = None  # one use only, valid or not
    session.add(row)
    handoff_expires = as_utc(row.handoff_expires_at)
    # a handoff is always stored with its expiry; one without is as good as stale
    if handoff_expires is None or handoff_expires < now or as_utc(row.expires_at) <= now:
        return None
    token = _secrets.token_urlsafe(32)
    row.token_hash = _digest(token)
    session.add(row)
    max_age = int((as_utc(row.expires_at) - now).total_seconds())
    return _signer(key).sign(token).decode(), max_age


@dataclass(frozen=True)
class Resolved:
    session_id: int
    user: User


def resolve(*, session: Session, cookie: str | None, key: str) -> Resolved | None:
    """The live session and enabled account a cookie value stands for, else None."""
    if not cookie:
        return None
    try:
        token = _signer(key).unsign(cookie).decode()
    except BadSignature:  # forged, or signed with another key
        return None
    row = session.exec(select(WebSession).where(WebSession.token_hash == _digest(token))).first()
    if row is None:
        return None
    return _live(session, row)


def active(*, session: Session, session_id: int) -> Resolved | None:
    """The session by id (kept in a tab's state) if it is still live."""
    row = session.get(WebSession, session_id)
    return None if row is None else _live(session, row)


def _live(session: Session, row: WebSession) -> Resolved | None:
    if row.revoked_at is not None or as_utc(row.expires_at) <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return Resolved(row_id(row), user)


def revoke(*, session: Session, session_id: int, reason: str = "logout") -> None:
    row = session.get(WebSession, session_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        row.revoked_reason = reason
        row.handoff_hash = None
        session.add(row)


def revoke_user(*, session: Session, user_id: int, reason: str) -> int:
    """Revoke every live session of a user; returns how many."""
    rows = session.exec(
        select(WebSession).where(
            WebSession.user_id == user_id, col(WebSession.revoked_at).is_(None)
        )
    ).all()
    for row in rows:
        row.revoked_at = utcnow()
        row.revoked_reason = reason
        row.handoff_hash = None
        session.add(row)
    return len(rows)


def safe_next(target: str | None) -> str:
    """A local path to land on after login: ``/cost`` yes, ``//evil.example`` or a full URL
    no (those become ``/``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target

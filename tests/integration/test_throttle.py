"""Repeated failed log-ins slow down, then lock the account (and the client) for a while."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from shadowtutor.accounts import throttle, users
from shadowtutor.accounts.permissions import SYSTEM
from shadowtutor.accounts.throttle import LoginRefused, LoginThrottle
from shadowtutor.tables import UserCreate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def accounts(session: Session) -> Session:
    for name in ("alice", "bob"):
        users.add_user(
            session=session,
            user=UserCreate(username=name, role="reviewer", password=f"right-{name}-pw"),
            actor_id=SYSTEM,
        )
    return session


def attempt(t: LoginThrottle, session: Session, name: str, pw: str, client: str = "10.0.0.1"):
    return t.login(session=session, username=name, password=pw, client=client)


def test_thirty_wrong_passwords_lock_the_account_even_for_the_right_one(accounts: Session) -> None:
    clock, slept = Clock(), []
    t = LoginThrottle(clock=clock, sleep=slept.append)
    messages = []
    for _ in range(30):
        with pytest.raises(LoginRefused) as exc:
            attempt(t, accounts, "alice", "guess")
        messages.append(str(exc.value))
    assert "Too many failed log-ins for this account" in messages[throttle.ACCOUNT_LIMIT - 1]
    assert slept and max(slept) <= throttle.MAX_DELAY_S and slept[0] == 1.0  # from the 3rd on
    with pytest.raises(LoginRefused, match="locked for 15 more minutes"):
        attempt(t, accounts, "alice", "right-alice-pw")
    assert attempt(t, accounts, "bob", "right-bob-pw", client="10.0.0.2").username == "bob"
    clock.now += throttle.LOCK_S + 1
    assert attempt(t, accounts, "alice", "right-alice-pw").username == "alice"


def test_one_client_guessing_many_accounts_is_locked(accounts: Session) -> None:
    t = LoginThrottle(clock=Clock(), sleep=lambda s: None)
    for i in range(throttle.CLIENT_LIMIT):
        with pytest.raises(LoginRefused):
            attempt(t, accounts, f"user{i}", "guess", client="10.9.9.9")
    with pytest.raises(LoginRefused, match="for this address"):
        attempt(t, accounts, "bob", "right-bob-pw", client="10.9.9.9")
    assert attempt(t, accounts, "bob", "right-bob-pw", client="10.0.0.3").username == "bob"


def test_a_success_clears_the_account_and_old_failures_expire(accounts: Session) -> None:
    clock = Clock()
    t = LoginThrottle(clock=clock, sleep=lambda s: None)
    for _ in range(throttle.ACCOUNT_LIMIT - 1):
        with pytest.raises(LoginRefused):
            attempt(t, accounts, "alice", "guess")
    attempt(t, accounts, "alice", "right-alice-pw")
    for _ in range(throttle.ACCOUNT_LIMIT - 1):
        with pytest.raises(LoginRefused):
            attempt(t, accounts, "alice", "guess")
    clock.now += throttle.WINDOW_S + 1
    with pytest.raises(LoginRefused, match="wrong password"):
        attempt(t, accounts, "alice", "guess")  # the earlier ones no longer count

"""Login throttling: slow down, then lock for a while, after repeated failed log-ins, per
account and per client address.

Each failure within ``WINDOW_S`` counts against the account and the client. From the third
failure on, the answer waits ``min(2 ** (n - 3), MAX_DELAY_S)`` seconds (so guessing costs
time); after ``ACCOUNT_LIMIT`` failures the account, and after ``CLIENT_LIMIT`` failures the
client, is locked for ``LOCK_S``: even the right password is refused, with a message saying
how long. A success clears the account's failures (not the client's).

The state lives in the dashboard process (one Streamlit server serves every session); several
dashboard replicas behind a load balancer each keep their own. The number of keys kept is
bounded, so a flood of made-up names cannot grow memory without limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session

from shadowtutor.accounts import users
from shadowtutor.errors import ShadowTutorError
from shadowtutor.tables import User

WINDOW_S = 15 * 60.0
LOCK_S = 15 * 60.0
ACCOUNT_LIMIT = 5
CLIENT_LIMIT = 20
MAX_DELAY_S = 4.0
MAX_KEYS = 10_000


class LoginRefused(ShadowTutorError, PermissionError):
    """A log-in that failed or is locked; the message is safe to show."""


@dataclass
class _Failures:
    times: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def login(self, *, session: Session, username: str, password: str, client: str | None) -> User:
        """The user, or :class:`LoginRefused` (wrong credentials, or locked)."""
        keys = {"account": f"user:{username.strip().lower()}", "client": f"ip:{client or '?'}"}
        self._refuse_if_locked(keys)
        user = users.authenticate(session=session, username=username, password=password)
        if user is not None:
            with self._lock:
                self._keys.pop(keys["account"], None)
            return user
        delay = self._fail(keys)
        if delay:
            self.sleep(delay)
        self._refuse_if_locked(keys)  # this failure may have been the one that locks
        raise LoginRefused("Unknown user, wrong password or disabled account.")

    def _refuse_if_locked(self, keys: dict[str, str]) -> None:
        now = self.clock()
        with self._lock:
            for kind, key in keys.items():
                entry = self._keys.get(key)
                if entry and entry.locked_until > now:
                    minutes = math.ceil((entry.locked_until - now) / 60)
                    who = "this account" if kind == "account" else "this address"
                    raise LoginRefused(
                        f"Too many failed log-ins for {who}: locked for {minutes} more "
                        f"minute{'s' if minutes != 1 else ''}. Try again later, or ask an admin "
                        "to reset the password (`shadowtutor users set-password`)."
                    )

    def _fail(self, keys: dict[str, str]) -> float:
        """Count a failure against both keys; the delay to apply (seconds)."""
        now = self.clock()
        worst = 0
        with self._lock:
            for kind, key in keys.items():
                entry = self._keys.pop(key, None) or _Failures()
                entry.times = [t for t in entry.times if now - t < WINDOW_S] + [now]
                limit = ACCOUNT_LIMIT if kind == "account" else CLIENT_LIMIT
                if len(entry.times) >= limit:
                    entry.locked_until = now + LOCK_S
                    entry.times.clear()
                self._keys[key] = entry  # most recent last
                worst = max(worst, len(entry.times))
            while len(self._keys) > MAX_KEYS:
                self._keys.popitem(last=False)
        return min(2.0 ** (worst - 3), MAX_DELAY_S) if worst >= 3 else 0.0


# The dashboard's one throttle (the process serves every browser session).
THROTTLE = LoginThrottle()

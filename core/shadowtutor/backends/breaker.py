"""The student's circuit breaker: stop calling a student that keeps failing, probe it later."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Breaker:
    """Opens after ``failures`` consecutive failures; after ``cooldown_s`` one probe may pass
    (half-open): its success closes the breaker, its failure opens it again.

    A probe whose caller never reports back (its task was cancelled: ``CancelledError`` is not
    an ``Exception``; its thread died) holds the half-open slot only for ``cooldown_s``: then
    the next call may probe, and the lost probe is counted in ``abandoned_probes``. So no
    caller can wedge the breaker half-open until a restart."""

    def __init__(
        self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ):
        self.failures = max(1, failures)
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False
        self._probe_started = 0.0
        self.opened_count = 0
        self.abandoned_probes = 0

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._probing or self.clock() - self._opened_at >= self.cooldown_s:
                return "half-open"
            return "open"

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            now = self.clock()
            if self._probing and now - self._probe_started >= self.cooldown_s:
                self.abandoned_probes += 1  # its caller never said how it went
                self._probing = False
            if not self._probing and now - self._opened_at >= self.cooldown_s:
                self._probing = True
                self._probe_started = now
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._opened_at = None
            self._probing = False

    def failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self._probing or self._consecutive >= self.failures:
                if self._opened_at is None or self._probing:
                    self.opened_count += 1
                self._opened_at = self.clock()
                self._probing = False

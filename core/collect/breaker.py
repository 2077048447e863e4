"""The student's circuit breaker: stop calling a student that keeps failing, probe it later."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Breaker:
    """Opens after ``failures`` consecutive failures; after ``cooldown_s`` one probe may pass
    (half-open): its success closes the breaker, its failure opens it again."""

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
        self.opened_count = 0

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
            if not self._probing and self.clock() - self._opened_at >= self.cooldown_s:
                self._probing = True
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

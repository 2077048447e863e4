"""State read from the database in the background, one thread per database URL, so a request
thread only ever looks at what was last read (the rollout state, :mod:`shadowtutor.gate.routing`;
the request routers, :mod:`shadowtutor.router.live`).

A reader's thread calls ``read(url)`` every ``interval()`` seconds into ``state`` (monotonic
time of the read, the value); a read that raises keeps the previous state (the caller's
``read`` decides what a failure means and says so). The thread ends after ``idle()`` seconds
without a caller; the next caller starts a new one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Reader(Generic[T]):
    """One URL's background thread and what it last read."""

    def __init__(self, owner: Refreshers[T], url: str) -> None:
        self.owner = owner
        self.url = url
        self.state: tuple[float, T] | None = None
        self.used_at = time.monotonic()
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=owner.name, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stopped.is_set():
                try:
                    self.state = (time.monotonic(), self.owner.read(self.url))
                except Exception:  # noqa: S110 - ``read`` reported it; the old state stands
                    pass
                self.ready.set()
                if time.monotonic() - self.used_at > self.owner.idle():
                    break
                self.stopped.wait(self.owner.interval())
        finally:
            self.owner.forget(self)


class Refreshers(Generic[T]):
    """The readers of one kind of state, by database URL."""

    def __init__(
        self,
        name: str,
        read: Callable[[str], T],
        *,
        interval: Callable[[], float],
        idle: Callable[[], float],
    ) -> None:
        self.name = name
        self.read = read
        self.interval = interval
        self.idle = idle
        self._lock = threading.Lock()
        self._readers: dict[str, Reader[T]] = {}

    def get(self, url: str) -> Reader[T]:
        """``url``'s reader, started if it is not running, marked as used now."""
        r = self._readers.get(url)
        if r is None:
            with self._lock:
                r = self._readers.get(url)
                if r is None:
                    r = self._readers[url] = Reader(self, url)
                    r.thread.start()
        r.used_at = time.monotonic()
        return r

    def __getitem__(self, url: str) -> Reader[T]:
        return self._readers[url]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._readers))

    def forget(self, reader: Reader[T]) -> None:
        with self._lock:
            if self._readers.get(reader.url) is reader:
                del self._readers[reader.url]

    def clear(self) -> None:
        """Stop every reader and forget their states."""
        with self._lock:
            for r in self._readers.values():
                r.stopped.set()
            self._readers.clear()

"""Every active student on each sampled request: the per-job fan-out the collector runs.

A :class:`Fanout` holds one :class:`Lane` per active student: its spec, its own backend (with
its own timeout) and its own circuit breaker, so a slow or failing student never holds back
or opens the breaker of another. :meth:`Fanout.answers` asks every lane whose sampling share
takes the request, in parallel on a small thread pool, and returns their answers in lane order.
It runs wherever the collector processes a job (a worker thread today), never on the request
path.

The students come from :func:`shadowtutor.students.registry.active_specs`, read again by a
background thread with routing's short database timeouts when a job finds the list older than
``REFRESH_S`` (2 s); that job waits for the new list (at most ``STALE_WAIT_S``: a hung database
never holds the work longer), so a student registered with ``shadowtutor students add`` gets
every job processed 2 s or more after the registration, in every running app, however sparse
the traffic; when the database cannot be read the last list is kept (at first: the default
student of the settings). While no student is registered the
one lane is the default student, using the collector's own backend and breaker, exactly as
before students were data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shadowtutor.backends import Backend, student_backend
from shadowtutor.backends.breaker import Breaker
from shadowtutor.config import Settings
from shadowtutor.gate import routing
from shadowtutor.students.registry import DEFAULT, StudentSpec, active_specs, default_spec

log = logging.getLogger("shadowtutor.students")

FIRST_READ_WAIT_S = 3.0  # a worker's first job waits at most this for the registry
REFRESH_S = 2.0  # how old the students' list may be when a job is processed
STALE_WAIT_S = 1.0  # a job that finds the list stale waits at most this for the new one
SHARE_SALT = "student-share"  # per student: who one student sees does not follow another's


def share_takes(key: str, spec: StudentSpec) -> bool:
    """Whether a sampled request (its sampling key) also goes to this student."""
    if spec.share_percent >= 100:
        return True
    return routing.bucket_of(key, f"{SHARE_SALT}:{spec.name}") < spec.share_percent


@dataclass
class Lane:
    spec: StudentSpec
    backend: Backend
    breaker: Breaker
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def name(self) -> str:
        return self.spec.name


Ask = Callable[[Lane], dict[str, Any] | None]


class Fanout:
    """The lanes of one collector (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        default_backend: Backend,
        default_breaker: Breaker,
        fixed: bool = False,
        refresh_s: float = REFRESH_S,
        max_workers: int = 4,
    ):
        self.settings = settings
        self.refresh_s = refresh_s
        self.max_workers = max(1, max_workers)
        self._fixed = fixed
        self._default = Lane(default_spec(settings), default_backend, default_breaker)
        self._lanes: list[Lane] = [self._default]
        self._read_at = float("-inf")
        self._lock = threading.Lock()
        self._refreshing: threading.Event | None = None
        self._first_read = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self.last_error: str | None = None

    # --- the lanes --------------------------------------------------------------------------
    def lanes(self) -> list[Lane]:
        """The current lanes, never older than ``refresh_s`` when the registry answers: a
        stale list is re-read by a background thread and the caller (a worker, never the
        request path) waits for it, at most ``STALE_WAIT_S`` (the first read: at most
        ``FIRST_READ_WAIT_S``); a hung or locked database then only means the lanes last
        read (at first: the default student)."""
        if self._fixed:
            return self._lanes
        if time.monotonic() - self._read_at >= self.refresh_s:
            done = self._refresh_in_background()
            first = not self._first_read.is_set()
            done.wait(FIRST_READ_WAIT_S if first else STALE_WAIT_S)
        return self._lanes

    def _refresh_in_background(self) -> threading.Event:
        """Start a re-read unless one runs; the event is set when the one running ends."""
        with self._lock:
            if self._refreshing is not None:
                return self._refreshing
            done = self._refreshing = threading.Event()
        threading.Thread(
            target=self._refresh, args=(done,), name="shadow-students", daemon=True
        ).start()
        return done

    def _refresh(self, done: threading.Event) -> None:
        try:
            lanes = self._build(self._read_specs())
            with self._lock:
                self._lanes = lanes
        except Exception as exc:  # never let a refresh take the lanes down
            self.last_error = f"student registry: {exc}"
        finally:
            self._read_at = time.monotonic()
            with self._lock:
                self._refreshing = None
            self._first_read.set()
            done.set()

    def names(self) -> list[str]:
        """The students of the lanes as last read (no refresh)."""
        return [lane.name for lane in self._lanes]

    def _read_specs(self) -> list[StudentSpec] | None:
        url = self.settings.db_url
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            return None  # no database yet: connecting would create an empty file
        from shadowtutor import db

        try:  # with routing's short timeouts: a hung database gives up, it does not hang
            with db.session_scope(url, timeout_s=routing.READ_TIMEOUT_S) as session:
                return active_specs(self.settings, session=session, live=True)
        except Exception as exc:  # an unreadable registry keeps the students we had
            self.last_error = f"student registry: {exc}"
            return None

    def _build(self, specs: list[StudentSpec] | None) -> list[Lane]:
        if specs is None:
            return self._lanes
        old = {lane.name: lane for lane in self._lanes}
        lanes = []
        for spec in specs:
            if spec.name == DEFAULT and not spec.registered:
                lanes.append(self._default)
                continue
            lane = old.get(spec.name)
            if lane is None or lane.spec != spec:  # new, or changed: a fresh backend
                breaker = lane.breaker if lane else self._new_breaker()
                lane = Lane(spec, student_backend(spec.settings(self.settings)), breaker)
            lanes.append(lane)
        return lanes

    def _new_breaker(self) -> Breaker:
        return Breaker(self.settings.breaker_failures, self.settings.breaker_cooldown_s)

    def lane(self, name: str | None, *, refresh: bool = True) -> Lane:
        """The lane of student ``name`` (the one serving users), else the first lane. The
        request path passes ``refresh=False``: it never waits for the registry's database."""
        lanes = self.lanes() if refresh else self._lanes
        for lane in lanes:
            if lane.name == name:
                return lane
        return lanes[0]

    # --- one job ----------------------------------------------------------------------------
    def answers(
        self, key: str, ask: Ask, *, first: str | None = None
    ) -> tuple[list[tuple[Lane, dict[str, Any]]], Lane, int]:
        """``ask`` every lane whose share takes ``key``, in parallel: their answers in lane
        order (the lane named ``first`` — the student serving users — leads), the lead lane,
        and how many lanes were asked. A lane whose ``ask`` returns None (a skipped breaker
        that is not recorded) is left out of the answers."""
        lanes = sorted(self.lanes(), key=lambda lane: lane.name != first)
        taken = []
        for lane in lanes:
            if share_takes(key, lane.spec):
                taken.append(lane)
            else:
                lane.counts["not_sampled"] += 1
        if len(taken) <= 1:
            found = [(lane, ask(lane)) for lane in taken]
        else:
            futures = [(lane, self._executor().submit(ask, lane)) for lane in taken]
            found = [(lane, f.result()) for lane, f in futures]
        return [(lane, a) for lane, a in found if a is not None], lanes[0], len(taken)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="shadow-fan")
            return self._pool

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per student: its counters and its breaker's state."""
        return {
            lane.name: {
                **dict(lane.counts),
                "breaker": lane.breaker.state,
                "model": lane.spec.model,
            }
            for lane in self._lanes
        }

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

"""The routing seam: which model answers a request.

The collector asks :func:`route` for every request (with the settings it was built with: its
database and its kill switch), so it must be cheap: the rollout state (stage, eligible
categories, kill switch, hash salt) is read from the database at most every ``CACHE_SECONDS``
and shared by all threads. The settings' kill switch ``SHADOWTUTOR_KILL_SWITCH`` is read by
:func:`killed`, the one reader of it (routing, the CLI and the dashboards ask it): the
environment variable is read on every call, so it acts at once, and wins over the settings'
value (from Streamlit secrets, say), as everywhere in the settings.

Each key (user or conversation id) gets a stable position ``bucket`` in 0..100 from a salted
SHA-256; the student serves an eligible request when ``bucket < stage``. Raising the stage
only adds buckets, so a user served by the student at 10 % is still served at 25 %. Anything
uncertain (no key, no category, a database that cannot be read) goes to the teacher.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shadowtutor.config import Settings

log = logging.getLogger(__name__)

CACHE_SECONDS = 2.0
KILL_ENV = "SHADOWTUTOR_KILL_SWITCH"


@dataclass(frozen=True)
class Route:
    served_by: str  # "teacher" | "student"
    stage: int  # percent of eligible traffic the student serves at this moment
    bucket: float | None  # the request's position 0..100 in the stable hash ring
    eligible: bool | None  # whether the request's category may go to the student
    student: str | None = None  # which student serves at stage > 0 (its approved GO)


@dataclass(frozen=True)
class _Snapshot:
    stage: int
    categories: frozenset[str]
    salt: str
    student: str | None = None


_TEACHER_ONLY = _Snapshot(0, frozenset(), "shadowtutor-rollout-1")
_lock = threading.Lock()
_cache: dict[str, tuple[float, _Snapshot]] = {}


def bucket_of(key: str, salt: str) -> float:
    """Stable position of ``key`` in 0..100 (uniform; the same for every process)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def killed(settings: Settings | None = None) -> bool:
    """Whether the kill switch setting is on: the environment variable as it is now, else
    (unset) the value in ``settings`` (which may come from Streamlit secrets). The one reader
    of ``SHADOWTUTOR_KILL_SWITCH``; a value that is not a boolean counts as off, with a
    warning (routing must never fail a request)."""
    raw = os.environ.get(KILL_ENV)
    if raw is None:
        return bool(settings is not None and settings.kill_switch)
    from shadowtutor.config import SettingsError, parse_value

    try:
        return bool(parse_value(KILL_ENV, raw, bool))
    except SettingsError as exc:
        log.warning("%s; the kill switch counts as off", exc)
        return False


def env_killed() -> bool:
    """The kill switch without settings at hand (see :func:`killed`)."""
    return killed()


def _db_url() -> str:
    from shadowtutor.config import Settings

    return Settings.load().db_url


_warned: set[tuple[str, str]] = set()


def _warn_once(url: str, problem: str) -> None:
    """One line per database and problem, not one every CACHE_SECONDS."""
    if (url, problem) not in _warned:
        _warned.add((url, problem))
        log.warning("ShadowTutor: %s; the teacher serves everything until then.", problem)


def _read(url: str) -> _Snapshot:
    from shadowtutor import db
    from shadowtutor.gate import rollout

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        # connecting would create an empty database file; nothing to read before `db upgrade`
        _warn_once(url, "no database yet: run `shadowtutor db upgrade` to create it")
        return _TEACHER_ONLY
    try:
        with db.session_scope(url) as session:
            current = rollout.state(session=session)
    except Exception as exc:  # a broken database must never break or slow the app
        try:
            status = db.schema_status(url)
            problem = None if status.ok else status.message().replace(". Run", ": run")
        except Exception:
            problem = None
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        _warn_once(url, problem or f"rollout state unreadable ({first_line})")
        return _TEACHER_ONLY
    _warned.difference_update({w for w in _warned if w[0] == url})  # fixed: say it again later
    return _Snapshot(current.serving, frozenset(current.categories), current.salt, current.student)


def snapshot(url: str | None = None) -> _Snapshot:
    """The rollout state, from the database at most every CACHE_SECONDS."""
    url = url or _db_url()
    now = time.monotonic()
    hit = _cache.get(url)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    with _lock:
        hit = _cache.get(url)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        snap = _read(url)
        _cache[url] = (time.monotonic(), snap)
        return snap


def clear_cache() -> None:
    """Forget the cached state (and database URL): the next call reads them again."""
    global _url_cache
    with _lock:
        _cache.clear()
        _url_cache = None


_url_cache: tuple[float, str] | None = None


def _cached_url() -> str:
    global _url_cache
    now = time.monotonic()
    if _url_cache is None or now - _url_cache[0] >= CACHE_SECONDS:
        _url_cache = (now, _db_url())
    return _url_cache[1]


def route(*, key: str | None, category: str | None, settings: Settings | None = None) -> Route:
    """Decide who serves a request identified by ``key`` (user or conversation id), with the
    rollout state of ``settings``' database (without settings: the environment's)."""
    snap = snapshot(settings.db_url if settings is not None else _cached_url())
    return decide(
        stage=0 if killed(settings) else snap.stage,
        categories=snap.categories,
        salt=snap.salt,
        key=key,
        category=category,
        student=snap.student,
    )


def decide(
    *,
    stage: int,
    categories: frozenset[str],
    salt: str,
    key: str | None,
    category: str | None,
    student: str | None = None,
) -> Route:
    """The routing rule itself, pure: student when eligible and ``bucket < stage``; the
    route names the student of the rollout (the one with the approved GO)."""
    bucket = bucket_of(key, salt) if key else None
    eligible = category is not None and category in categories
    if stage <= 0:
        return Route("teacher", 0, bucket, eligible)
    served = eligible and bucket is not None and bucket < stage
    return Route("student" if served else "teacher", stage, bucket, eligible, student)

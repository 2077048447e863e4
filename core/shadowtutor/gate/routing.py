"""The routing seam: which model answers a request.

The collector asks :func:`route` for every request (with the settings it was built with: its
database and its kill switch), so it must never wait: the rollout state (stage, eligible
categories, kill switch, hash salt) is read by one background thread per database URL every
``REFRESH_SECONDS``, with short connect and statement timeouts, and a request thread only looks
at the last state read. A state not read yet (the first request after start) or older than
``STALE_AFTER`` refresh intervals (the database hangs) means the teacher serves; each case is
counted (:func:`fallbacks`) and logged once. A kill flipped in the database so reaches a running
process within one refresh interval.

The settings' kill switch ``SHADOWTUTOR_KILL_SWITCH`` is read by
:func:`shadowtutor.gate.killswitch.killed` on every request, so it acts at once.

Each key (user or conversation id) gets a stable position ``bucket`` in 0..100 from a salted
SHA-256; the student serves an eligible request when ``bucket < stage``. Raising the stage
only adds buckets, so a user served by the student at 10 % is still served at 25 %. Anything
uncertain (no key, no category, a database that cannot be read) goes to the teacher.

The request's kind (``plain``, ``tools``, ``json_object``, ``json_schema``, ``images``) is
seen too (:func:`by_kind`): the gate decides per (student, category, kind), and the student
serves a kind in a category only where that kind has its own approved GO (plain requests: the
rollout's categories, as before; other kinds: the rollout's ``kinds``). A request of any other
kind routed to it goes to the teacher at every stage, the route saying why (``reason``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shadowtutor.gate import killswitch
from shadowtutor.gate.refresher import Reader, Refreshers

if TYPE_CHECKING:
    from shadowtutor.config import Settings

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0  # how often a background thread re-reads the rollout state
CACHE_SECONDS = REFRESH_SECONDS  # the older name
STALE_AFTER = 3  # refresh intervals: an older state (the database hangs) means teacher-only
IDLE_SECONDS = 60.0  # a refresher nobody asked for this long stops (restarted on demand)
READ_TIMEOUT_S = 2.0  # connect and statement timeout of a routing read


@dataclass(frozen=True)
class Route:
    served_by: str  # "teacher" | "student"
    stage: int  # percent of eligible traffic the student serves at this moment
    bucket: float | None  # the request's position 0..100 in the stable hash ring
    eligible: bool | None  # whether the request's category may go to the student
    student: str | None = None  # which student serves at stage > 0 (its approved GO)
    reason: str | None = None  # why the teacher serves a request routed to the student
    # the kinds of request the student may serve in this request's category (its GOs)
    kinds: frozenset[str] = frozenset({"plain"})
    # the request router's version, its P(acceptable) for this request and the category's
    # threshold (shadowtutor.router.live; None without a router in routed mode)
    router_version: int | None = None
    router_score: float | None = None
    router_threshold: float | None = None
    # in cascade mode, the validator's threshold for the student's answer (set when the router
    # lets the student try) and its P(acceptable) of the answer (once it answered)
    validator_threshold: float | None = None
    validator_score: float | None = None


@dataclass(frozen=True)
class _Snapshot:
    stage: int
    categories: frozenset[str]
    salt: str
    student: str | None = None
    kinds: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (category, kinds) of other kinds' GOs


_TEACHER_ONLY = _Snapshot(0, frozenset(), "shadowtutor-rollout-1")
_lock = threading.Lock()


def bucket_of(key: str, salt: str) -> float:
    """Stable position of ``key`` in 0..100 (uniform; the same for every process)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def _db_url() -> str:
    from shadowtutor.config import Settings

    return Settings.load().db_url


_warned: set[tuple[str, str]] = set()


def _warn_once(url: str, problem: str, level: int = logging.WARNING) -> None:
    """One line per database and problem, not one every REFRESH_SECONDS."""
    if (url, problem) not in _warned:
        _warned.add((url, problem))
        log.log(level, "ShadowTutor: %s; the teacher serves everything until then.", problem)


def _read(url: str) -> _Snapshot:
    """The rollout state from the database, with short connect and statement timeouts
    (``READ_TIMEOUT_S``); anything wrong means teacher-only. Never raises. Runs on the
    refresher's thread, never on a request thread."""
    from shadowtutor import db
    from shadowtutor.gate import rollout

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        # connecting would create an empty database file; nothing to read before `db upgrade`
        _warn_once(url, "no database yet: run `shadowtutor db upgrade` to create it")
        return _TEACHER_ONLY
    try:
        with db.get_engine(url, READ_TIMEOUT_S).connect() as conn:
            current = rollout.serving_state(conn)
    except Exception as exc:  # a broken database must never break or slow the app
        try:
            status = db.schema_status(url, timeout_s=READ_TIMEOUT_S)
            problem = None if status.ok else status.message().replace(". Run", ": run")
        except Exception:
            problem = None
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        _warn_once(url, problem or f"rollout state unreadable ({first_line})")
        return _TEACHER_ONLY
    _warned.difference_update({w for w in _warned if w[0] == url})  # fixed: say it again later
    return _Snapshot(
        current.serving,
        frozenset(current.categories),
        current.salt,
        current.student,
        tuple(sorted(current.kinds.items())),
    )


def _read_or_teacher(url: str) -> _Snapshot:
    """The refresher's read: :func:`_read` never raises; if it did, the teacher, said once."""
    try:
        return _read(url)
    except Exception as exc:
        _warn_once(url, f"rollout state unreadable ({exc!r})")
        return _TEACHER_ONLY


# One background reader per database URL (shadowtutor.gate.refresher): a request thread only
# looks at the state last read; a collector keeps its database's reader alive with watch().
_refreshers: Refreshers[_Snapshot] = Refreshers(
    "shadow-routing-refresh",
    _read_or_teacher,
    interval=lambda: REFRESH_SECONDS,
    idle=lambda: IDLE_SECONDS,
)
_fallbacks: Counter[str] = Counter()


def _refresher(url: str) -> Reader[_Snapshot]:
    return _refreshers.get(url)


def watch(url: str) -> None:
    """Keep ``url``'s rollout state refreshed in the background (start its refresher if it is
    not running). Never touches the database on the calling thread."""
    _refresher(url)


def wait_ready(url: str | None = None, timeout: float = 10.0) -> bool:
    """Start ``url``'s refresher and wait until its first read finished (for tools and tests
    that want the real state on their first call; never on a request path)."""
    return _refresher(url or _cached_url()).ready.wait(timeout)


def _fallback(url: str, kind: str, problem: str, level: int) -> _Snapshot:
    with _lock:
        _fallbacks[kind] += 1
    _warn_once(url, problem, level)
    return _TEACHER_ONLY


def fallbacks() -> dict[str, int]:
    """Requests the teacher served because the rollout state was ``missing`` (not read yet)
    or ``stale`` (older than ``STALE_AFTER`` refresh intervals: the database hangs)."""
    with _lock:
        return {"missing": _fallbacks["missing"], "stale": _fallbacks["stale"]}


def snapshot(url: str | None = None) -> _Snapshot:
    """The rollout state as last read by ``url``'s background refresher; teacher-only while
    it is missing or stale. Never reads the database."""
    url = url or _cached_url()
    state = _refresher(url).state
    if state is None:
        return _fallback(url, "missing", "rollout state not read yet (first request)", logging.INFO)
    age = time.monotonic() - state[0]
    if age > STALE_AFTER * REFRESH_SECONDS:
        return _fallback(
            url,
            "stale",
            f"rollout state is stale (last read {age:.0f} s ago: the database does not answer)",
            logging.WARNING,
        )
    return state[1]


def clear_cache() -> None:
    """Stop the refreshers and forget their states (and the database URL): the next call
    starts reading again."""
    global _url_cache
    _refreshers.clear()
    with _lock:
        _fallbacks.clear()
        _url_cache = None


_url_cache: tuple[float, str] | None = None


def _cached_url() -> str:
    global _url_cache
    now = time.monotonic()
    if _url_cache is None or now - _url_cache[0] >= REFRESH_SECONDS:
        _url_cache = (now, _db_url())
    return _url_cache[1]


def route(*, key: str | None, category: str | None, settings: Settings | None = None) -> Route:
    """Decide who serves a request identified by ``key`` (user or conversation id), with the
    rollout state of ``settings``' database (without settings: the environment's)."""
    snap = snapshot(settings.db_url if settings is not None else _cached_url())
    return decide(
        stage=0 if killswitch.killed(settings) else snap.stage,
        categories=snap.categories,
        salt=snap.salt,
        key=key,
        category=category,
        student=snap.student,
        kinds=dict(snap.kinds),
    )


def by_kind(route: Route, kind: str) -> Route:
    """``route`` with the request's ``kind`` seen: a request the student would serve goes to
    the teacher when the student has no approved GO for its kind in the request's category
    (``route.kinds``), with the reason ``kind: <kind>``. A GO earned on prose says nothing
    of tool calls or JSON. Pure."""
    if route.served_by != "student" or kind in route.kinds:
        return route
    return Route(
        "teacher", route.stage, route.bucket, route.eligible, None, f"kind: {kind}", route.kinds
    )


def decide(
    *,
    stage: int,
    categories: frozenset[str],
    salt: str,
    key: str | None,
    category: str | None,
    student: str | None = None,
    kinds: Mapping[str, tuple[str, ...]] | None = None,
) -> Route:
    """The routing rule itself, pure: student when eligible and ``bucket < stage``; the
    route names the student of the rollout (the one with the approved GO). A category is
    eligible when one of its kinds has a GO: plain when it is one of ``categories``, the
    others from ``kinds`` (category -> kinds); the route carries the kinds the student may
    serve there, which :func:`by_kind` checks."""
    bucket = bucket_of(key, salt) if key else None
    others = (kinds or {}).get(category or "", ())
    served_kinds = frozenset(({"plain"} if category in categories else set()) | set(others))
    eligible = category is not None and bool(served_kinds)
    if stage <= 0:
        return Route("teacher", 0, bucket, eligible, kinds=served_kinds)
    served = eligible and bucket is not None and bucket < stage
    return Route(
        "student" if served else "teacher", stage, bucket, eligible, student, kinds=served_kinds
    )

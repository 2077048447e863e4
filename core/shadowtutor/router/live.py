"""The router on the request path: score the request, keep the student where it may serve.

:func:`apply` takes the gate's route of a request (:func:`shadowtutor.gate.routing.route`:
stage, bucket, the serving student) and, when that student's router is in ``routed`` mode,
decides per request: in a category whose threshold is certified (see
:mod:`shadowtutor.router.threshold`) a plain request goes to the student when its bucket is
below the stage (the rollout's percentage still applies on top) and its score is at least the
threshold, else to the teacher (``reason`` ``router: below threshold``). A category without a
certified threshold keeps the gate's category decision; other kinds than plain keep their own
GOs. Every scored request's route carries the router's version, score and threshold, so the
record does and later reviews audit it.

In ``cascade`` mode, a non-streamed plain request of a category with a certified cascade point
is let try the student by the cascade's router threshold, and once the student answered,
:func:`validate` scores the answer with the version's validator: below the cascade's validator
threshold the teacher answers instead (``validator: below threshold``); the student's answer is
kept for the record. A stream, or a category without a cascade point, is routed as in
``routed`` mode.

Nothing here waits: one background thread per database URL reads the routers' state every
``REFRESH_SECONDS`` (the model's bytes only when the active version changed) and a request
only looks at the last state read. Failures never reach the app and never let the student
serve unchecked: a router that cannot be loaded, or errors while scoring, sends the request
to the teacher (``router: unavailable``, ``router: error``); until the state is first read, or
when it cannot be read, the gate's category decision applies (counted in :func:`counts`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shadowtutor.gate.refresher import Reader, Refreshers
from shadowtutor.gate.routing import Route
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.router.features import Scorer

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0
STALE_AFTER = 3  # refresh intervals; an older state counts as not read
IDLE_SECONDS = 60.0
READ_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Active:
    """A student's router as the request path sees it."""

    version: int | None
    mode: str
    thresholds: Mapping[str, float] = field(default_factory=dict)
    scorer: Scorer | None = None
    error: str | None = None  # why the active version could not be loaded
    # the cascade: per category (router threshold, validator threshold), and the validator
    cascade: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    validator: Scorer | None = None


_lock = threading.Lock()
_counts: Counter[str] = Counter()


def counts() -> dict[str, int]:
    """Requests the router decided or could not decide, by outcome since start."""
    with _lock:
        return dict(_counts)


def _count(name: str) -> None:
    with _lock:
        _counts[name] += 1


def thresholds_of(choices: Mapping[str, Any]) -> dict[str, float]:
    return {
        cat: float(c["threshold"])
        for cat, c in choices.items()
        if isinstance(c, Mapping) and c.get("threshold") is not None
    }


def cascade_of(choices: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Per category the cascade's chosen (router, validator) thresholds, where certified."""
    out: dict[str, tuple[float, float]] = {}
    for cat, c in choices.items():
        chosen = (c.get("cascade") or {}).get("chosen") if isinstance(c, Mapping) else None
        if isinstance(chosen, Mapping):
            out[cat] = (float(chosen["router"]), float(chosen["validator"]))
    return out


def _read(url: str, loaded: dict[int, Active]) -> dict[str, Active]:
    """Every student's router state (``loaded``: models already read, by row id)."""
    from sqlmodel import col, func, select

    from shadowtutor import db
    from shadowtutor.router import model
    from shadowtutor.tables import RouterEvent, RouterModel

    out: dict[str, Active] = {}
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return out  # connecting would create an empty database file (routing says so)
    with db.session_scope(url, READ_TIMEOUT_S) as session:
        newest_ids = select(func.max(RouterEvent.id)).group_by(RouterEvent.student)
        events = session.exec(select(RouterEvent).where(col(RouterEvent.id).in_(newest_ids)))
        newest = {e.student: e for e in events}  # each student's newest event only
        for student, event in newest.items():
            if event.router_id is None:
                out[student] = Active(None, event.mode)
                continue
            known = loaded.get(event.router_id)
            if known is None:
                row = session.get(RouterModel, event.router_id)
                try:
                    if row is None:
                        raise model.RouterModelError(f"router #{event.router_id} is missing")
                    scorer, validator = model.loads_both(row.model)
                    known = Active(
                        row.version,
                        "",
                        thresholds_of(row.choices),
                        scorer,
                        cascade=cascade_of(row.choices),
                        validator=validator,
                    )
                except Exception as exc:  # a broken version: the teacher, said once
                    log.warning("ShadowTutor: router of %s cannot be loaded: %s", student, exc)
                    known = Active(row.version if row else None, "", error=str(exc))
                loaded[event.router_id] = known
            out[student] = dataclasses.replace(known, mode=event.mode)
    return out


_warned: set[str] = set()  # URLs whose unreadable state was said (again once it reads)


def _read_or_say(url: str) -> dict[str, Active]:
    """The refresher's read; unreadable: said once, and the gate's decision applies (the
    reader keeps its previous state, or none)."""
    try:
        state = _read(url, _loaded.setdefault(url, {}))
    except Exception as exc:
        if url not in _warned:
            _warned.add(url)
            log.warning("ShadowTutor: router state unreadable (%s)", exc)
        raise
    _warned.discard(url)
    return state


_loaded: dict[str, dict[int, Active]] = {}  # per URL: the models already read, by row id
_refreshers: Refreshers[dict[str, Active]] = Refreshers(
    "shadow-router-refresh", _read_or_say, interval=lambda: REFRESH_SECONDS,
    idle=lambda: IDLE_SECONDS,
)  # fmt: skip


def _refresher(url: str) -> Reader[dict[str, Active]]:
    return _refreshers.get(url)


def watch(url: str) -> None:
    """Keep ``url``'s router state read in the background (never on the calling thread)."""
    _refresher(url)


def wait_ready(url: str, timeout: float = 10.0) -> bool:
    """Start ``url``'s reader and wait for its first read (tools and tests only)."""
    return _refresher(url).ready.wait(timeout)


def clear_cache() -> None:
    _refreshers.clear()
    with _lock:
        _loaded.clear()
        _warned.clear()
        _counts.clear()


def snapshot(url: str) -> dict[str, Active] | None:
    """The routers' state as last read (None: not read yet, or stale)."""
    state = _refresher(url).state
    if state is None or time.monotonic() - state[0] > STALE_AFTER * REFRESH_SECONDS:
        return None
    return state[1]


def _to_teacher(route: Route, reason: str, version: int | None = None) -> Route:
    version = route.router_version if version is None else version
    return dataclasses.replace(route, served_by="teacher", reason=reason, router_version=version)


def decide(
    route: Route,
    active: Active | None,
    *,
    messages: Sequence[Mapping[str, Any]],
    category: str | None,
    kind: str = "plain",
    tools: int = 0,
    stream: bool = False,
) -> Route:
    """The rule of the module docstring for one request and its student's router. Counts."""
    if active is None or active.mode not in ("routed", "cascade"):
        return route
    if active.scorer is None:
        _count("unavailable")
        if route.served_by == "student":
            return _to_teacher(route, "router: unavailable", active.version)
        return route
    if kind != "plain":
        _count("other_kind")
        return route
    try:
        score = active.scorer.score(messages, category=category, kind=kind, tools=tools)
    except Exception:  # a scoring failure: the teacher, never the student unchecked
        _count("error")
        if route.served_by == "student":
            return _to_teacher(route, "router: error", active.version)
        return route
    limit = active.thresholds.get(category or "")
    checked: float | None = None  # the validator's threshold, when it checks the answer
    pair = active.cascade.get(category or "") if active.mode == "cascade" else None
    if pair is not None and active.validator is not None:
        if stream:  # a stream is served as it comes: nothing to check, the router decides
            _count("cascade_stream")
        else:
            limit, checked = pair
    scored = dataclasses.replace(
        route, router_version=active.version, router_score=score, router_threshold=limit
    )
    if limit is None:
        _count("no_threshold")
        return scored  # the gate's category decision stands
    in_stage = route.bucket is not None and route.bucket < route.stage
    if in_stage and score >= limit:
        _count("student")
        kinds = route.kinds | {"plain"}
        return dataclasses.replace(
            scored,
            served_by="student",
            eligible=True,
            reason=None,
            kinds=kinds,
            validator_threshold=checked,
        )
    if in_stage:
        _count("below_threshold")
        return _to_teacher(scored, "router: below threshold")
    _count("outside_stage")
    return dataclasses.replace(scored, served_by="teacher")


def apply(
    route: Route,
    *,
    url: str,
    messages: Sequence[Mapping[str, Any]],
    category: str | None,
    kind: str = "plain",
    tools: int = 0,
    stream: bool = False,
) -> Route:
    """:func:`decide` with ``url``'s router state as last read; never reads the database.
    Only routes of a rollout (stage > 0) are looked at."""
    if route.stage <= 0:
        return route
    routers = snapshot(url)
    if routers is None:
        _count("state_not_read")
        return route
    active = routers.get(route.student or DEFAULT_STUDENT)
    return decide(
        route,
        active,
        messages=messages,
        category=category,
        kind=kind,
        tools=tools,
        stream=stream,
    )


SENT_BACK = "validator: below threshold"


def check(
    route: Route,
    active: Active | None,
    *,
    messages: Sequence[Mapping[str, Any]],
    answer: Mapping[str, Any],
    category: str | None,
) -> Route:
    """The cascade's second step, after the student answered a request it was let try
    (``route.validator_threshold`` set): the validator's P(acceptable) of the answer, and
    the teacher instead when it is below the threshold (``validator: below threshold``), when
    the validator is gone (``validator: unavailable``) or fails (``validator: error``).
    Counts. Never raises."""
    limit = route.validator_threshold
    if limit is None:
        return route
    same = active is not None and active.version == route.router_version
    if not same or active is None or active.validator is None:
        _count("validator_unavailable")
        return _to_teacher(route, "validator: unavailable")
    try:
        score = active.validator.score_answer(messages, answer, category=category)
    except Exception:
        _count("validator_error")
        return _to_teacher(route, "validator: error")
    checked = dataclasses.replace(route, validator_score=score)
    if score >= limit:
        _count("validator_passed")
        return checked
    _count("validator_sent_back")
    return _to_teacher(checked, SENT_BACK)


def validate(
    route: Route,
    *,
    url: str,
    messages: Sequence[Mapping[str, Any]],
    answer: Mapping[str, Any],
    category: str | None,
) -> Route:
    """:func:`check` with ``url``'s router state as last read (never reads the database;
    a state gone stale since the request was routed sends the answer back). Never raises."""
    if route.validator_threshold is None:
        return route
    try:
        routers = snapshot(url)
    except Exception:  # the state's reader broke: never the student unchecked
        _count("validator_error")
        return _to_teacher(route, "validator: error")
    active = routers.get(route.student or DEFAULT_STUDENT) if routers else None
    return check(route, active, messages=messages, answer=answer, category=category)

"""Gate test cases shared by the gate, decisions and rollout tests: the shipped criteria for
one candidate category, a window aggregate of a student, accounts and recorded decisions."""

from __future__ import annotations

import tomllib

import numpy as np
from sqlmodel import Session

from shadowtutor.accounts import users
from shadowtutor.accounts.permissions import SYSTEM
from shadowtutor.gate import criteria, decisions
from shadowtutor.gate.criteria import Aggregate, Window
from shadowtutor.tables import GateDecision, UserCreate

SHIPPED = tomllib.loads(criteria.DEFAULT_CONFIG.read_text())


def config(**changes: object) -> criteria.GateConfig:
    """The shipped criteria, for one candidate category unless told otherwise."""
    data = {**SHIPPED, "eligibility": {"categories": ["greeting"]}}
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            data[section] = {**data.get(section, {}), name: value}
        else:
            data[section] = value
    return criteria.parse_config(data)


def agg(
    pairs: int = 2000,
    fail: int = 0,
    lat: float = 500.0,
    sim: float = 0.6,
    method: str = "lexical",
    scores: dict | None = None,
    critical: int = 0,
) -> Aggregate:
    """One category's window: ``pairs`` requests of which ``fail`` failed, latencies and
    similarities around ``lat`` and ``sim``, 150 reviews (60 fours, 90 fives) by default."""
    rng = np.random.default_rng(0)
    ok = pairs - fail
    return Aggregate(
        pairs=pairs,
        successes=ok,
        latencies_ms=rng.lognormal(np.log(lat), 0.3, size=ok).tolist(),
        similarity=criteria.similarity_bins(method, rng.normal(sim, 0.1, size=ok).clip(0, 1)),
        scores={4: 60, 5: 90} if scores is None else scores,
        critical=critical,
        critical_examples=["review tagged unsafe"] * critical,
    )


def account(session: Session, role: str) -> int:
    """A new account of ``role`` (username ``<role>-x``); its id."""
    user = users.add_user(
        session=session,
        user=UserCreate(username=f"{role}-x", role=role, password="password-x"),
        actor_id=SYSTEM,
    )
    return user.id


def recorded(
    session: Session, aggregate: Aggregate, cfg: criteria.GateConfig | None = None
) -> GateDecision:
    """The decision on a window of one greeting ``aggregate``, recorded."""
    d = criteria.decide(cfg or config(), Window(None, None, {"greeting": aggregate}))
    return decisions.record(session=session, decision=d, actor_id=SYSTEM)

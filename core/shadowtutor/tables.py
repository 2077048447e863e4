"""Database tables (SQLModel). Small, transactional state shared by reviewers and managers.

The shadow log itself is not here: it lives in files read by DuckDB (see ``shadowtutor.log``). Every
change to these tables goes through an Alembic migration in ``migrations/versions``; a test
checks that the migrated schema and these models agree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, overload

from sqlalchemy import JSON, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC: every datetime column stores UTC and must be given a time zone."""
    return datetime.now(UTC)


@overload
def as_utc(ts: datetime) -> datetime: ...
@overload
def as_utc(ts: None) -> None: ...
@overload
def as_utc(ts: datetime | None) -> datetime | None: ...
def as_utc(ts: datetime | None) -> datetime | None:
    """The same instant as an aware UTC datetime. Stored times are UTC, but some paths
    (SQLite, raw SQL, DuckDB) hand them back naive."""
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


def row_id(row: _Row) -> int:
    """The primary key of a row the session has flushed (SQLModel types it ``int | None``
    because it is None until the INSERT)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: flush the session first")
    return row.id


def _json(factory: Callable[[], dict[str, Any] | list[Any]]) -> Any:
    return Field(default_factory=factory, sa_column=Column(JSON, nullable=False))


# --- users -------------------------------------------------------------------------------


class UserBase(SQLModel):
    username: str = Field(index=True, unique=True, max_length=64)
    display_name: str = Field(default="", max_length=128)
    role: str = Field(max_length=16)


class UserCreate(UserBase):
    password: str


class User(UserBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(max_length=256)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class UserPublic(UserBase):
    id: int
    disabled: bool
    created_at: datetime


# --- review ------------------------------------------------------------------------------


class ReviewItem(SQLModel, table=True):
    """A pair in the review queue. ``snapshot`` holds the pair as it was logged, so review
    never depends on the log files still being there."""

    __tablename__ = "review_item"
    id: int | None = Field(default=None, primary_key=True)
    pair_id: str = Field(index=True, unique=True, max_length=64)
    snapshot: dict[str, Any] = _json(dict)
    language: str | None = Field(default=None, max_length=16, index=True)
    category: str | None = Field(default=None, max_length=32, index=True)
    similarity: float | None = None
    pair_ts: datetime | None = None
    strategy: str = Field(default="random", max_length=32)
    priority: float = 0.0
    required_reviews: int = 1
    reviews_done: int = 0
    status: str = Field(default="open", max_length=16, index=True)  # open | done
    claimed_by: int | None = Field(default=None, foreign_key="user.id")
    claimed_until: datetime | None = None
    enqueued_by: int | None = Field(default=None, foreign_key="user.id")
    enqueued_at: datetime = Field(default_factory=utcnow)


class Review(SQLModel, table=True):
    """One reviewer's judgement of one item. Editing appends a new row and marks the earlier
    one not current, so every version is kept."""

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="review_item.id", index=True)
    pair_id: str = Field(index=True, max_length=64)
    reviewer_id: int = Field(foreign_key="user.id", index=True)
    student_score: int | None = None  # 1..5
    teacher_score: int | None = None  # 1..5
    verdict: str | None = Field(default=None, max_length=16)  # student | tie | teacher
    decision: str = Field(max_length=16)  # approve | reject | skip
    tags: list[Any] = _json(list)
    note: str = ""
    corrected_answer: str | None = None
    seconds_spent: float | None = None
    blind: bool = False
    is_current: bool = Field(default=True, index=True)
    previous_id: int | None = Field(default=None, foreign_key="review.id")
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Tag(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    kind: str = Field(default="", max_length=32)  # cultural_fit | tone | error | safety
    description: str = ""
    active: bool = True


# --- cost --------------------------------------------------------------------------------


class Budget(SQLModel, table=True):
    """Monthly teacher budget. Rows are appended; the newest applies."""

    id: int | None = Field(default=None, primary_key=True)
    monthly_usd: float
    set_by: int | None = Field(default=None, foreign_key="user.id")
    set_at: datetime = Field(default_factory=utcnow)


# --- gate and rollout --------------------------------------------------------------------


class GateDecision(SQLModel, table=True):
    """An evaluation of the deploy gate. Append-only: never updated."""

    __tablename__ = "gate_decision"
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    outcome: str = Field(max_length=16)  # GO | NO_GO | INCONCLUSIVE
    config_version: str = Field(default="", max_length=64)
    config_hash: str = Field(max_length=64)
    data_fingerprint: str = Field(default="", max_length=64)
    window_start: datetime | None = None
    window_end: datetime | None = None
    evidence: dict[str, Any] = _json(dict)
    created_by: int | None = Field(default=None, foreign_key="user.id")
    # The student the decision is about (``students.DEFAULT`` for the single-student setup;
    # NULL on decisions recorded before students were data, read as the default student).
    student: str | None = Field(default=None, max_length=64, index=True)
    # The evidence epoch the decision's evidence accumulated in (NULL on older decisions).
    epoch_id: int | None = Field(default=None, foreign_key="gate_epoch.id")


class GateEpoch(SQLModel, table=True):
    """The start of an evidence epoch for one student: the gate's evidence accumulates from
    here. Started when a student (version) is first evaluated, when the criteria file
    changes, or by an admin with a reason. Append-only: never updated."""

    __tablename__ = "gate_epoch"
    id: int | None = Field(default=None, primary_key=True)
    student: str = Field(max_length=64, index=True)
    started_at: datetime
    kind: str = Field(max_length=16)  # student | criteria | manual
    reason: str = ""
    config_hash: str = Field(default="", max_length=64)
    student_version: str = Field(default="", max_length=200)  # model and version it judges
    created_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class GateEvent(SQLModel, table=True):
    """Approval, override or revocation tied to one decision."""

    __tablename__ = "gate_event"
    id: int | None = Field(default=None, primary_key=True)
    decision_id: int = Field(foreign_key="gate_decision.id", index=True)
    kind: str = Field(max_length=16)  # approve | override | revoke
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    reason: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class RolloutEvent(SQLModel, table=True):
    """Rollout history; the newest row is the current state. Append-only."""

    __tablename__ = "rollout_event"
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    action: str = Field(max_length=16)  # advance | rollback | kill | unkill | auto_rollback
    stage: int  # percent of eligible traffic served by the student: 0, 10, 25, 50, 100
    killed: bool = False
    decision_id: int | None = Field(default=None, foreign_key="gate_decision.id")
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    reason: str = ""
    details: dict[str, Any] = _json(dict)


# --- export ------------------------------------------------------------------------------


class ExportJob(SQLModel, table=True):
    __tablename__ = "export_job"
    __table_args__ = (UniqueConstraint("path"),)
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: int | None = Field(default=None, foreign_key="user.id")
    status: str = Field(default="done", max_length=16)
    filters: dict[str, Any] = _json(dict)
    counts: dict[str, Any] = _json(dict)
    path: str = Field(max_length=512)
    manifest: dict[str, Any] = _json(dict)


# --- judge -------------------------------------------------------------------------------


class JudgeScore(SQLModel, table=True):
    """The LLM judge's scores of one pair (both answer orders), kept apart from human reviews:
    no page or statistic ever counts these as reviews. One row per pair, judge template
    version and model; a failed judgement keeps its error and no scores."""

    __tablename__ = "judge_score"
    __table_args__ = (UniqueConstraint("pair_id", "template_version", "model"),)
    id: int | None = Field(default=None, primary_key=True)
    pair_id: str = Field(index=True, max_length=64)
    template_version: str = Field(max_length=32, index=True)
    model: str = Field(max_length=128)
    category: str | None = Field(default=None, max_length=32)
    language: str | None = Field(default=None, max_length=16)
    pair_ts: datetime | None = None
    student_score: float | None = None  # mean over the two orders, 1..5
    teacher_score: float | None = None
    preferred: str | None = Field(default=None, max_length=16)  # student | teacher | tie
    consistent: bool | None = None  # the same answer preferred in both orders
    calls: list[Any] = _json(list)  # per order: order, scores, latency_ms, tokens, cost_usd, error
    cost_usd: float | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)


# --- students ----------------------------------------------------------------------------


class Student(SQLModel, table=True):
    """A student model the collector shadows (see ``shadowtutor.students``). Rows are never
    deleted: retiring sets ``retired_at``, so the log's ``student_name`` keeps a meaning."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    backend: str = Field(max_length=16)  # ollama | openai
    base_url: str = Field(default="", max_length=512)
    model: str = Field(max_length=128)
    timeout_s: float | None = None  # None: SHADOWTUTOR_STUDENT_TIMEOUT_S
    share_percent: float = 100.0  # share of sampled requests this student also answers
    monthly_cost_usd: float | None = None
    version: str = Field(default="", max_length=64)
    trained_on: str | None = Field(default=None, max_length=64)  # an export's dataset version
    demo: bool = False  # made by `shadowtutor demo`: listed and ranked, never called
    created_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    retired_at: datetime | None = None


# --- web sessions ------------------------------------------------------------------------


class WebSession(SQLModel, table=True):
    """A browser session of the app. The cookie carries a signed random token; only its
    SHA-256 is stored, so the table cannot be replayed into cookies. ``handoff_hash`` is the
    one-time token the login form hands to the cookie route (cleared once used)."""

    __tablename__ = "web_session"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str = Field(default="", max_length=32)
    handoff_hash: str | None = Field(default=None, max_length=64, index=True)
    handoff_expires_at: datetime | None = None


# --- routers -----------------------------------------------------------------------------


class RouterModel(SQLModel, table=True):
    """One trained version of a student's router (``shadowtutor.router``): the model's bytes
    (data, never a pickle), what it learned from (``counts``), and per category the threshold
    with its guarantee and the frontier (``choices``). Rows are only added."""

    __tablename__ = "router_model"
    id: int | None = Field(default=None, primary_key=True)
    student: str = Field(max_length=64, index=True)
    version: int  # 1, 2, ... per student
    created_at: datetime = Field(default_factory=utcnow)
    created_by: int | None = Field(default=None, foreign_key="user.id")
    floor: float  # the acceptable rate the thresholds guarantee
    alpha: float  # each category's error level, from the gate's budget
    counts: dict[str, Any] = _json(dict)
    choices: dict[str, Any] = _json(dict)
    metrics: dict[str, Any] = _json(dict)
    labels_through: datetime | None = None  # the newest label it learned from
    model: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class RouterEvent(SQLModel, table=True):
    """The router's history, appended only: a version trained or rolled back to (the newest
    event names the active version) and the routing mode (``category``: the gate's categories
    decide; ``routed``: the router decides per request)."""

    __tablename__ = "router_event"
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    student: str = Field(max_length=64, index=True)
    action: str = Field(max_length=16)  # train | rollback | mode
    router_id: int | None = Field(default=None, foreign_key="router_model.id")
    mode: str = Field(default="category", max_length=16)  # category | routed
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    reason: str = ""

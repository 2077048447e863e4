"""The guard's counts from the log: per category, what the users of each arm did.

The arms are the randomized split of the rollout: plain requests of an eligible category,
while the student served a stage above 0, with a user key (so a bucket): a request whose
bucket is below the stage belongs to the student's arm, any other to the teacher's. That is
the assignment, not who answered in the end (intention to treat): a student that failed and
fell back to the teacher stays in its arm, or its failures would move to the teacher's.
Requests without a user key, other kinds of request and everything at 0 % or under the kill
switch are outside the experiment and not counted.

The counts are summed per user too (the user key, else the conversation), for each arm's
design effect (:func:`shadowtutor.gate.guard.design_effect`): the split is by user.

Users' reactions come from the DuckDB view ``feedback`` (columns ``request_id``, ``kind``:
thumbs, rating, correction, flag, regenerate, abandoned; ``value``, ``ts``, ``source``) when
the connection has one: a request's newest thumb says whether it was rated and whether down
(``DOWN``: the values that mean down); a regenerate counts once, for the request it names
(the answer the user asked again for). Errors are the answer the user got being an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from shadowtutor import db
from shadowtutor.config import Settings
from shadowtutor.gate import criteria, epochs, evidence, guard, rollout
from shadowtutor.log.schema import DEFAULT_STUDENT

# A thumb's value that means "down": the feedback room stores -1 (a double, any negative
# number counts); a table of the app's own may say it in words or as a boolean.
DOWN = ("down", "-1", "0", "false", "thumbs_down", "no", "bad")

_NO_FEEDBACK = (
    "SELECT CAST(NULL AS VARCHAR) AS request_id, CAST(NULL AS VARCHAR) AS kind, "
    "CAST(NULL AS VARCHAR) AS value, CAST(NULL AS TIMESTAMP) AS ts WHERE false"
)


def has_feedback(con: duckdb.DuckDBPyConnection) -> bool:
    """Does the connection have a ``feedback`` view or table?"""
    row = con.execute(
        "SELECT (SELECT count(*) FROM duckdb_views() WHERE view_name = 'feedback') "
        "+ (SELECT count(*) FROM duckdb_tables() WHERE table_name = 'feedback')"
    ).fetchone()
    return bool(row and row[0])


def feedback_events(con: duckdb.DuckDBPyConnection) -> int:
    """How many feedback events the log holds (0 without a ``feedback`` view)."""
    if not has_feedback(con):
        return 0
    row = con.execute("SELECT count(*) FROM feedback").fetchone()
    return int(row[0]) if row else 0


def counts(
    con: duckdb.DuckDBPyConnection, since: datetime, until: datetime | None = None
) -> dict[str, tuple[guard.Arms, ...]]:
    """Per category, both arms' counts per rollout stage (in the stages' order; the guard's
    strata, :func:`shadowtutor.gate.guard.stratified_evidence`) from ``since`` (up to
    ``until``), on a connection with the ``pairs`` view (one row a request:
    :func:`shadowtutor.gate.evidence.connect`)."""
    return {cat: tuple(stages.values()) for cat, stages in by_stage(con, since, until).items()}


def by_stage(
    con: duckdb.DuckDBPyConnection, since: datetime, until: datetime | None = None
) -> dict[str, dict[int, guard.Arms]]:
    """:func:`counts` keyed by the stage (percent), in the stages' order."""
    source = "feedback" if has_feedback(con) else f"({_NO_FEEDBACK})"
    down = ", ".join(f"'{v}'" for v in DOWN)
    sql = f"""
        WITH arms AS (
            SELECT request_id, category, stage,
                   coalesce(user_hash, conversation_id, request_id) AS who,
                   CASE WHEN bucket < stage THEN 'student' ELSE 'teacher' END AS arm,
                   coalesce(CASE WHEN served_by = 'student' THEN student_error
                                 ELSE teacher_error END, '') <> '' AS failed
            FROM pairs
            WHERE stage > 0 AND eligible AND bucket IS NOT NULL AND request_kind = 'plain'
              AND category IS NOT NULL AND ts >= $since AND ts < $until
        ),
        fb AS (SELECT CAST(request_id AS VARCHAR) AS request_id, kind,
                      trim(lower(CAST(value AS VARCHAR)), '"') AS value, ts FROM {source}),
        thumbs AS (SELECT request_id, arg_max(value, ts) AS value FROM fb
                   WHERE kind = 'thumbs' GROUP BY request_id),
        regen AS (SELECT DISTINCT request_id FROM fb WHERE kind = 'regenerate'),
        users AS (
            SELECT a.category, a.stage, a.arm, a.who, count(*) AS n, count(t.request_id) AS r,
                   count(*) FILTER (WHERE t.value IN ({down})
                                    OR TRY_CAST(t.value AS DOUBLE) < 0) AS d,
                   count(rg.request_id) AS g, count(*) FILTER (WHERE a.failed) AS e
            FROM arms a LEFT JOIN thumbs t USING (request_id)
                 LEFT JOIN regen rg USING (request_id)
            GROUP BY ALL
        )
        SELECT category, stage, arm, sum(n), sum(r), sum(d), sum(g), sum(e),
               count(*) FILTER (WHERE r > 0), sum(d * d), sum(d * r), sum(r * r),
               count(*), sum(g * g), sum(g * n), sum(n * n), sum(e * e), sum(e * n)
        FROM users GROUP BY ALL ORDER BY ALL
    """
    end = until or datetime(9999, 1, 1, tzinfo=UTC)
    params = {"since": _naive(since), "until": _naive(end)}
    out: dict[str, dict[int, dict[str, guard.ArmCounts]]] = {}
    for cat, stage, arm, *row in con.execute(sql, params).fetchall():
        n, r, d, g, e, rated_users, dd, dr, rr, users, gg, gn, nn, ee, en = (
            float(x or 0) for x in row
        )
        out.setdefault(cat, {}).setdefault(round(stage), {})[arm] = guard.ArmCounts(
            answers=int(n),
            rated=int(r),
            thumbs_down=int(d),
            regenerates=int(g),
            errors=int(e),
            design=(  # per user: the split is by user (guard.design_effect)
                guard.design_effect(int(rated_users), r, d, dd, dr, rr),
                guard.design_effect(int(users), n, g, gg, gn, nn),
                guard.design_effect(int(users), n, e, ee, en, nn),
            ),
        )
    empty = guard.ArmCounts()
    return {
        cat: {
            stage: guard.Arms(arms.get(guard.STUDENT, empty), arms.get(guard.TEACHER, empty))
            for stage, arms in sorted(stages.items())
        }
        for cat, stages in out.items()
    }


def _naive(when: datetime) -> datetime:
    """UTC without a zone: the ``pairs`` view's timestamps are UTC and naive."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


@dataclass(frozen=True)
class Scope:
    """Where the guard's evidence about a student starts, and the rollout it is about."""

    since: datetime  # the evidence epoch's start
    epoch: int  # the student's how-manieth epoch (it spends the budget)
    words: str  # since when and why, in words
    state: rollout.RolloutState


def scope(
    settings: Settings, config: criteria.GateConfig, *, now: datetime, student: str | None
) -> Scope:
    with db.session_scope(settings.db_url) as session:
        epoch = epochs.due(session=session, config=config, student=student, now=now)
        index = epochs.index_of(session=session, epoch=epoch)
        state = rollout.state(session=session)
    return Scope(epoch.started_at, index, epochs.since_words(epoch), state)


def serves(state: rollout.RolloutState, name: str) -> bool:
    """Is ``name`` the student of the rollout (serving now, or the last to serve before a
    rollback)? Every student's record of a request carries the request's route, so only the
    serving student's records say what users got; before any rollout, anyone may."""
    return state.student is None and state.stage == 0 or (state.student or DEFAULT_STUDENT) == name


def report(
    settings: Settings,
    config: criteria.GateConfig,
    *,
    now: datetime,
    student: str | None = None,
    found: dict[str, tuple[guard.Arms, ...]] | None = None,
    where: Scope | None = None,
) -> guard.Report:
    """The guard's report on ``student`` (None: the default student) from the evidence of
    its current epoch up to ``now`` (``found``: those counts, already read; ``where``: the
    scope, already read): the rollout's categories while it runs, else the criteria file's
    eligible ones, else every category counted."""
    name = student or DEFAULT_STUDENT
    where = where or scope(settings, config, now=now, student=student)
    state, index = where.state, where.epoch
    if not serves(state, name):
        found = {}  # its records in the student's arm hold another student's served answers
    elif found is None:
        found = counts(evidence.connect(settings.log_path, student), where.since, now)
    cats = tuple(state.categories) if state.stage > 0 and state.categories else None
    return guard.assess(
        config,
        found,
        student=name,
        categories=cats,
        epoch=index,
        students=evidence.students_under_test(settings),
        since=where.words,
    )

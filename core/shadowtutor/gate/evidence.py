"""Gathering the gate's evidence: log aggregates from DuckDB, review statistics from the
database, merged into a :class:`~shadowtutor.gate.criteria.Window`. Evaluating (decide +
record + rollback rules) and replaying day by day are :mod:`shadowtutor.gate.evaluate`.

Everything heavy is read once: the log as per-day, per-category aggregates and the reviews as
plain rows. A window is then just a merge of days, so a 60-day replay costs one query.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from sqlmodel import Session, col, func, select

from shadowtutor import db
from shadowtutor.config import Settings
from shadowtutor.gate import rollout
from shadowtutor.gate.buckets import Calibration, calibrate
from shadowtutor.gate.criteria import PLAIN, Aggregate, GateConfig, RatingKey, Window
from shadowtutor.judge import scores
from shadowtutor.judge.calibration import MIN_CALIBRATION_PAIRS, MIN_JUDGE_KAPPA
from shadowtutor.judge.scores import JudgeRow
from shadowtutor.log import read, schema, sql
from shadowtutor.tables import Review, ReviewItem, Student, Tag, as_utc

NONE_CATEGORY = "(none)"


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


# --- the log -----------------------------------------------------------------------------


def connect(log_dir: Path, student: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ``pairs`` view over the whole log (texts included: the
    gate needs error messages, which the dashboards' narrow table leaves out): one row per
    request, its primary record, as the dashboards count; with ``student``, that student's
    records instead (with several students each answer is its own record)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    read.create_views(con, log_dir)
    # A view cannot take a bound parameter: the name goes in as a quoted SQL string.
    where = (
        "is_primary"
        if student is None
        else "student_name = '{}'".format(student.replace("'", "''"))
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW pairs AS SELECT * FROM "
        f"({sql.FLAT_SELECT} FROM raw_pairs) WHERE {where}"
    )
    return con


DayAggregates = dict[date, dict[str, Aggregate]]

_ASKED = schema.student_asked_sql("student_")
_OK = schema.student_ok_sql("student_")
_UNSUPPORTED = schema.student_unsupported_sql("student_")


def log_days(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, config: GateConfig
) -> DayAggregates:
    """Per UTC day, category and request kind (plain in the category's aggregate, the other
    kinds in its ``kinds``): pairs, successes, latencies, similarity bins, tool-call and JSON
    checks, critical errors, for pairs in [start, end). A student whose server refused the
    request's feature (``unsupported: ...``) is counted apart, never as a pair of the success
    rate. Playground pairs are not evidence and are left out."""
    params = {"start": _naive(start), "end": _naive(end)}
    where = f"ts >= $start AND ts < $end AND coalesce(source, '') <> 'playground' AND {_ASKED}"
    cat = f"coalesce(category, '{NONE_CATEGORY}')"
    out: DayAggregates = defaultdict(dict)

    def agg(day: date, category: str, kind: str) -> Aggregate:
        return out[day].setdefault(category, Aggregate()).of_kind(kind)

    rows = con.execute(
        f"""SELECT CAST(ts AS DATE), {cat}, request_kind,
                   count(*) FILTER (WHERE NOT {_UNSUPPORTED}),
                   count(*) FILTER (WHERE {_OK}),
                   list(student_latency_ms) FILTER (WHERE {_OK} AND student_latency_ms IS NOT NULL),
                   count(*) FILTER (WHERE {_UNSUPPORTED}),
                   count(*) FILTER (WHERE {_OK} AND agreement_kind = 'tool_calls'),
                   count(*) FILTER (WHERE {_OK} AND agreement_kind = 'tool_calls'
                                    AND agreement_score >= 0.999999),
                   count(*) FILTER (WHERE {_OK} AND agreement_kind = 'json'),
                   count(*) FILTER (WHERE {_OK} AND agreement_kind = 'json'
                                    AND coalesce(agreement_valid, false))
            FROM pairs WHERE {where} GROUP BY ALL""",
        params,
    ).fetchall()
    for day, category, kind, pairs, ok, lat, unsupported, compared, agreed, checked, valid in rows:
        a = agg(day, category, kind)
        a.pairs, a.successes, a.latencies_ms = int(pairs), int(ok), [float(x) for x in lat or []]
        a.unsupported = int(unsupported)
        a.tools_compared, a.tools_agreed = int(compared), int(agreed)
        a.json_checked, a.json_valid = int(checked), int(valid)
    rows = con.execute(
        f"""SELECT CAST(ts AS DATE), {cat}, request_kind, similarity_method,
                   round(similarity, 2), count(*), sum(similarity)
            FROM pairs WHERE {where} AND similarity IS NOT NULL AND similarity_method IS NOT NULL
            GROUP BY ALL""",
        params,
    ).fetchall()
    for day, category, kind, method, key, count, total in rows:
        bins = agg(day, category, kind).similarity.setdefault(method, {})
        bins[float(key)] = [int(count), total]
    if config.critical_error_kinds:
        rows = con.execute(
            f"""SELECT CAST(ts AS DATE), {cat}, request_kind, student_error, count(*)
                FROM pairs WHERE {where} AND student_error IS NOT NULL GROUP BY ALL""",
            params,
        ).fetchall()
        for day, category, kind, error, count in rows:
            if error.strip().lower().startswith(config.critical_error_kinds):
                a = agg(day, category, kind)
                a.critical += int(count)
                a.critical_examples.append(f"student error: {error[:80]}")
    return out


def pair_kinds(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The pairs of a kind other than plain, id -> kind: their reviews and judge scores are
    evidence of that kind (:func:`assemble`)."""
    rows = con.execute("SELECT id, request_kind FROM pairs WHERE request_kind <> 'plain'")
    return {str(i): str(k) for i, k in rows.fetchall()}


# --- reviews -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewRow:
    pair_ts: datetime | None
    created_at: datetime
    category: str
    score: int | None  # None for a skip or a review without a student score
    similarity: float | None
    method: str | None
    critical_tags: tuple[str, ...]
    pair_id: str = ""
    teacher_score: int | None = None
    weight: float = 1.0  # design weight of the review item (judge_unsure queues), else 1


def critical_tag_names(*, session: Session, config: GateConfig) -> set[str]:
    names = set(config.critical_review_tags)
    if config.critical_review_tag_kinds:
        stmt = select(Tag.name).where(col(Tag.kind).in_(config.critical_review_tag_kinds))
        names.update(session.exec(stmt))
    return names


def review_rows(*, session: Session, config: GateConfig) -> list[ReviewRow]:
    """Current reviews with their pair's time, category and similarity."""
    critical = critical_tag_names(session=session, config=config)
    # sqlmodel types select() for up to four columns; with more it has no overload.
    stmt = (
        select(  # type: ignore[call-overload,misc]
            Review.student_score,
            Review.decision,
            Review.tags,
            Review.created_at,
            Review.pair_id,
            Review.teacher_score,
            ReviewItem.pair_ts,
            ReviewItem.category,
            ReviewItem.similarity,
            ReviewItem.snapshot["similarity_method"].as_string(),
            ReviewItem.snapshot["design_weight"].as_float(),
        )
        .join(ReviewItem, col(ReviewItem.id) == col(Review.item_id))
        .where(col(Review.is_current))
    )
    out = []
    for (
        score,
        decision,
        tags,
        created,
        pair_id,
        teacher,
        pair_ts,
        category,
        sim,
        method,
        weight,
    ) in session.exec(stmt):
        usable = score is not None and decision != "skip"
        out.append(
            ReviewRow(
                pair_ts=as_utc(pair_ts) if pair_ts else None,
                created_at=as_utc(created),
                category=category or NONE_CATEGORY,
                score=int(score) if usable else None,
                similarity=sim,
                method=method,
                critical_tags=tuple(t for t in (tags or []) if t in critical),
                pair_id=pair_id,
                teacher_score=int(teacher) if usable and teacher is not None else None,
                weight=float(weight) if weight and weight > 0 else 1.0,
            )
        )
    return out


# --- windows -----------------------------------------------------------------------------


def assemble(
    days: DayAggregates,
    reviews: list[ReviewRow],
    start: datetime,
    end: datetime,
    *,
    as_of: datetime | None = None,
    review_start: datetime | None = None,
    judged: list[JudgeRow] | None = None,
    kinds: dict[str, str] | None = None,
) -> Window:
    """The window [start, end): the log days inside it, and the reviews (and judge scores)
    that existed at ``as_of`` (default ``end``) of pairs from [review_start, end) (default:
    the same start). ``kinds``: the pairs of a kind other than plain (:func:`pair_kinds`),
    whose reviews and judge scores are evidence of their kind."""
    start, end = as_utc(start), as_utc(end)
    as_of = as_utc(as_of) if as_of else end
    review_start = as_utc(review_start) if review_start else start
    cats: dict[str, Aggregate] = {}
    for day, by_cat in days.items():
        if start.date() <= day <= end.date():
            for category, a in by_cat.items():
                cats.setdefault(category, Aggregate()).add(a)
    kinds = kinds or {}
    for r in reviews:
        if r.pair_ts is None or not review_start <= r.pair_ts < end or r.created_at > as_of:
            continue
        a = cats.setdefault(r.category, Aggregate()).of_kind(kinds.get(r.pair_id, PLAIN))
        if r.score is not None:
            a.scores[r.score] = a.scores.get(r.score, 0) + 1
        if r.critical_tags:
            a.critical += 1
            if len(a.critical_examples) < 5:
                a.critical_examples.append(f"review tagged {', '.join(r.critical_tags)}")
    # Paired scores (human student/teacher, judge student/teacher): the teacher comparison
    # needs them even without a judge.
    _add_ratings(cats, reviews, judged or [], review_start, end, as_of, kinds)
    for a in cats.values():  # gathered: the similarity criterion is calibrated from reviews
        for sub in (a, *a.kinds.values()):
            sub.sim_reviews = sub.sim_reviews or {}
    for r in reviews:
        if r.pair_ts is None or not review_start <= r.pair_ts < end or r.created_at > as_of:
            continue
        if r.score is None or r.similarity is None or not r.method:
            continue
        cell = cats[r.category].of_kind(kinds.get(r.pair_id, PLAIN))
        cell.sim_reviews = cell.sim_reviews or {}
        cells = cell.sim_reviews.setdefault(r.method, {})
        key = (round(float(r.similarity), 2), float(r.score))
        cells[key] = cells.get(key, 0) + 1
    return Window(start, end, cats)


def _add_ratings(
    cats: dict[str, Aggregate],
    reviews: list[ReviewRow],
    judged: list[JudgeRow],
    start: datetime,
    end: datetime,
    as_of: datetime,
    kinds: dict[str, str],
) -> None:
    """Paired human and judge scores (``Aggregate.ratings``) of the window's pairs."""
    judge = {
        j.pair_id: j
        for j in judged
        if j.pair_ts is not None and start <= j.pair_ts < end and j.created_at <= as_of
    }
    reviewed = set()
    for r in reviews:
        if r.pair_ts is None or not start <= r.pair_ts < end or r.created_at > as_of:
            continue
        if r.score is None:
            continue
        j = judge.get(r.pair_id)
        reviewed.add(r.pair_id)
        key: RatingKey = (
            r.score,
            r.teacher_score,
            j.student if j else None,
            j.teacher if j else None,
        )
        if r.weight != 1.0:  # a review from a judge_unsure queue: its design weight goes along
            key = (*key, round(r.weight, 6))
        cell = cats.setdefault(r.category, Aggregate()).of_kind(kinds.get(r.pair_id, PLAIN))
        cell.ratings[key] = cell.ratings.get(key, 0) + 1
    for pair_id, j in judge.items():
        if pair_id in reviewed:
            continue
        key = (None, None, j.student, j.teacher)
        cell = cats.setdefault(j.category or NONE_CATEGORY, Aggregate())
        ratings = cell.of_kind(kinds.get(pair_id, PLAIN)).ratings
        ratings[key] = ratings.get(key, 0) + 1


def window_bounds(config: GateConfig, now: datetime) -> tuple[datetime, datetime]:
    end = as_utc(now)
    return end - timedelta(days=config.window_days), end


def review_start(config: GateConfig, end: datetime) -> datetime:
    return as_utc(end) - timedelta(days=config.review_window_days)


def gather(
    settings: Settings,
    config: GateConfig,
    now: datetime,
    student: str | None = None,
    *,
    since: datetime | None = None,
) -> Window:
    """The gate's evidence at ``now``: the log's pairs since ``since`` (the evidence epoch's
    start, :mod:`shadowtutor.gate.epochs`; None: the last ``window_days``), one per request
    (with ``student``, that student's), and the human reviews and judge scores of pairs from
    the same stretch (with ``student``, only of that student's pairs, so reviews belong to
    the student version they judged; without, all of them). With ``since``, the judge's
    scores count only when it was calibrated before ``since`` (:func:`judge_evidence`)."""
    start, end = window_bounds(config, now)
    if since is not None:
        start = as_utc(since)
    con = connect(settings.log_path, student)
    days = log_days(con, start, end, config)
    mine = (
        None if student is None else {r[0] for r in con.execute("SELECT id FROM pairs").fetchall()}
    )
    with db.session_scope(settings.db_url) as session:
        reviews = review_rows(session=session, config=config)
        judged, judge_info = judge_evidence(session=session, config=config, before=since)
    if mine is not None:
        reviews = [r for r in reviews if r.pair_id in mine]
        judged = [j for j in judged if j.pair_id in mine]
    first_review = start if since is not None else review_start(config, end)
    window = assemble(
        days, reviews, start, end, review_start=first_review, judged=judged, kinds=pair_kinds(con)
    )
    window.judge = judge_info
    return window


def students_under_test(settings: Settings) -> int:
    """How many students share the gate's error budget: the registered, unretired ones (at
    least the default student)."""
    # The table, not shadowtutor.students: the students package imports the collector, which
    # imports the gate.
    stmt = select(func.count()).select_from(Student).where(col(Student.retired_at).is_(None))
    with db.session_scope(settings.db_url) as session:
        return max(1, int(session.exec(stmt).one()))


def judge_evidence(
    *, session: Session, config: GateConfig, before: datetime | None = None
) -> tuple[list[JudgeRow], dict[str, Any] | None]:
    """The current judge's scores and what a decision records about it (template version,
    model, calibration against the human reviews); nothing when the gate does not use it.

    ``before`` (the evidence epoch's start): the judge takes part only when it was already
    calibrated on reviews written before it (:func:`judge_trusted`). Whether to use the
    judge is then fixed before the epoch's data, so the bound stays exact; and a judge that
    does not track people never takes a share of the error budget (with it, a random judge
    cost 26 % more reviews than none in the simulation). Its scores are then not evidence,
    and the record says why."""
    if not config.use_judge:
        return [], None
    judge = scores.current_judge(session)
    if judge is None:
        return [], None
    summary = scores.calibrate(session, judge).summary()
    info: dict[str, Any] = {"model": judge[1], **summary}
    if before is not None:
        earlier = scores.calibrate(session, judge, before=before)
        trusted, why = judge_trusted(earlier.overall.kappa, earlier.n)
        info["before_epoch"] = {**earlier.summary(), "used": trusted, "why": why}
        if not trusted:
            return [], info
    return scores.judge_rows(session, judge), info


def judge_trusted(kappa: float | None, pairs: int) -> tuple[bool, str]:
    """Whether the gate may use the judge: a weighted kappa of at least
    :data:`~shadowtutor.judge.calibration.MIN_JUDGE_KAPPA` against people on at least
    :data:`~shadowtutor.judge.calibration.MIN_CALIBRATION_PAIRS` pairs both scored (the review
    queue's rule for following the judge); the reason in words when it may not."""
    if pairs >= MIN_CALIBRATION_PAIRS and kappa is not None and kappa >= MIN_JUDGE_KAPPA:
        return True, (
            f"used: weighted kappa {kappa:.2f} against people on {pairs:,} pairs reviewed "
            "before the evidence epoch"
        )
    shown = "n/a" if kappa is None or kappa != kappa else f"{kappa:.2f}"
    return False, (
        f"not used: before the evidence epoch the judge was calibrated on {pairs:,} reviewed "
        f"pairs (weighted kappa {shown}); the gate uses it from {MIN_CALIBRATION_PAIRS} pairs "
        f"and kappa {MIN_JUDGE_KAPPA}, so the reviews decide alone"
    )


# --- calibration and rollout figures -----------------------------------------------------


def calibration(*, session: Session, config: GateConfig, method: str | None = None) -> Calibration:
    """Mean review score by similarity bucket, for the most reviewed similarity method."""
    # (method, pair id, similarity, score) of the reviews with both figures
    rated = [
        (r.method or "unknown", r.pair_id, r.similarity, r.score)
        for r in review_rows(session=session, config=config)
        if r.score and r.similarity
    ]
    if method is None:
        counts: dict[str, int] = defaultdict(int)
        for row_method, *_ in rated:
            counts[row_method] += 1
        method = max(counts, key=counts.__getitem__) if counts else "lexical"
    mine = [row for row in rated if row[0] == method]
    return calibrate(
        [(similarity, score) for _, _, similarity, score in mine],
        method=method,
        target=config.min_review_score,
        pair_ids=[pair_id for _, pair_id, _, _ in mine],
    )


def served_now(settings: Settings, session: Session) -> int:
    """Requests served by the student at the current stage since it began."""
    cur = rollout.state(session=session)
    if cur.stage == 0:
        return 0
    return rollout.served_at_stage(connect(settings.log_path), cur.stage, cur.since)

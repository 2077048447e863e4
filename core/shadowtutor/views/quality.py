"""Quality and latency queries for the Quality page (DuckDB over ``facts``; reviews from the DB).

Similarity figures always take one method (``lexical``, ``ollama``...), so a chart never mixes
scores from different methods. Latency percentiles are over successful calls only;
percentiles are DuckDB's ``quantile_cont`` (linear interpolation between order statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, col, select

from shadowtutor.cost.budget import DAYS_PER_MONTH
from shadowtutor.log.analytics import WHERE, Filters, query
from shadowtutor.tables import Review, ReviewItem

SIM_DIMENSIONS = {"language": "language", "category": "category"}


def similarity_methods(con: duckdb.DuckDBPyConnection, f: Filters) -> pd.DataFrame:
    """method, pairs: the similarity methods present, the most used first."""
    return query(
        con,
        f"""
        SELECT similarity_method AS method, count(*) AS pairs FROM facts
        WHERE {WHERE} AND similarity IS NOT NULL AND similarity_method IS NOT NULL
        GROUP BY 1 ORDER BY 2 DESC, 1
        """,
        f,
    )


def similarity_histogram(
    con: duckdb.DuckDBPyConnection, f: Filters, method: str, bins: int = 20
) -> pd.DataFrame:
    """bin_start, bin_end, pairs: scores in ``bins`` equal bins over 0..1 (1.0 in the last)."""
    df = query(
        con,
        f"""
        SELECT least(floor(similarity * $bins), $bins - 1)::INTEGER AS bin, count(*) AS pairs
        FROM facts WHERE {WHERE} AND similarity_method = $method AND similarity IS NOT NULL
        GROUP BY 1 ORDER BY 1
        """,
        f,
        method=method,
        bins=int(bins),
    )
    if df.empty:
        return pd.DataFrame(columns=["bin_start", "bin_end", "pairs"])
    full = pd.DataFrame({"bin": range(bins)}).merge(df, on="bin", how="left").fillna(0)
    full["bin_start"] = full["bin"] / bins
    full["bin_end"] = (full["bin"] + 1) / bins
    full["pairs"] = full["pairs"].astype(int)
    return full[["bin_start", "bin_end", "pairs"]]


def similarity_by_day(
    con: duckdb.DuckDBPyConnection, f: Filters, method: str, threshold: float
) -> pd.DataFrame:
    """day, pairs, mean, p10, median, share_above (score >= threshold)."""
    return query(
        con,
        f"""
        SELECT day, pairs, mean, q[1] AS p10, q[2] AS median, share_above FROM (
        SELECT lts::DATE AS day, count(*) AS pairs, avg(similarity) AS mean,
          quantile_cont(similarity, [0.10, 0.5]) AS q,  -- one selection for both: a third less
          avg(CASE WHEN similarity >= $threshold THEN 1.0 ELSE 0.0 END) AS share_above
        FROM facts WHERE {WHERE} AND similarity_method = $method AND similarity IS NOT NULL
        GROUP BY 1) ORDER BY 1
        """,
        f,
        method=method,
        threshold=float(threshold),
    )


_SIM_BY = {
    column: f"""
        SELECT {column} AS value, count(*) AS pairs, avg(similarity) AS mean,
          avg(CASE WHEN similarity >= $threshold THEN 1.0 ELSE 0.0 END) AS share_above
        FROM facts WHERE {WHERE} AND similarity_method = $method AND similarity IS NOT NULL
        GROUP BY 1 ORDER BY 2 DESC, 1
    """
    for column in SIM_DIMENSIONS.values()
}


def similarity_by(
    con: duckdb.DuckDBPyConnection, f: Filters, method: str, dimension: str, threshold: float
) -> pd.DataFrame:
    """value, pairs, mean, share_above per language or category."""
    if dimension not in SIM_DIMENSIONS:
        raise ValueError(f"dimension must be one of {', '.join(SIM_DIMENSIONS)}")
    return query(
        con, _SIM_BY[SIM_DIMENSIONS[dimension]], f, method=method, threshold=float(threshold)
    )


def latency_by_day(con: duckdb.DuckDBPyConnection, f: Filters) -> pd.DataFrame:
    """day, who (teacher | student), calls, p50, p95, p99 in ms, successful calls only."""
    wide = query(
        con,
        f"""
        SELECT lts::DATE AS day,
          count(teacher_latency_ms) FILTER (WHERE NOT teacher_failed) AS t_calls,
          quantile_cont(teacher_latency_ms, [0.5, 0.95, 0.99]) FILTER (WHERE NOT teacher_failed)
            AS t_q,
          count(student_latency_ms) FILTER (WHERE student_outcome = 'ok') AS s_calls,
          quantile_cont(student_latency_ms, [0.5, 0.95, 0.99])
            FILTER (WHERE student_outcome = 'ok') AS s_q
        FROM facts WHERE {WHERE} GROUP BY 1 ORDER BY 1
        """,
        f,
    )
    # records, not itertuples: the quantiles are list cells, which pandas' stubs type as scalars
    rows = [
        {"day": r["day"], "who": who, "calls": int(calls), "p50": q[0], "p95": q[1], "p99": q[2]}
        for r in wide.to_dict("records")
        for who, calls, q in (
            ("student", r["s_calls"], r["s_q"]),
            ("teacher", r["t_calls"], r["t_q"]),
        )
        if calls and q is not None
    ]
    return pd.DataFrame(rows, columns=["day", "who", "calls", "p50", "p95", "p99"])


def student_failures_by_day(con: duckdb.DuckDBPyConnection, f: Filters) -> pd.DataFrame:
    """day, attempts, errors, timeouts, error_rate, timeout_rate (of student attempts; a
    request the student's server refused as unsupported is no attempt of its answers)."""
    return query(
        con,
        f"""
        SELECT lts::DATE AS day, count(*) AS attempts,
          count(*) FILTER (WHERE student_outcome = 'error') AS errors,
          count(*) FILTER (WHERE student_outcome = 'timeout') AS timeouts,
          errors / attempts AS error_rate, timeouts / attempts AS timeout_rate
        FROM facts WHERE {WHERE} AND student_outcome IS NOT NULL
          AND student_outcome <> 'unsupported'
        GROUP BY 1 ORDER BY 1
        """,
        f,
    )


@dataclass(frozen=True)
class ReviewScores:
    teacher_mean: float | None
    student_mean: float | None
    reviews: int


def review_scores(
    *,
    session: Session,
    start: datetime | None = None,
    end: datetime | None = None,
    categories: tuple[str, ...] = (),
    languages: tuple[str, ...] = (),
) -> ReviewScores:
    """Mean 1-5 scores of current reviews, for pairs logged in [start, end) (aware UTC) and in
    the given categories and languages (empty: all)."""
    stmt = (
        select(func.avg(Review.teacher_score), func.avg(Review.student_score), func.count())
        .join(ReviewItem, col(ReviewItem.id) == col(Review.item_id))
        .where(col(Review.is_current), col(Review.student_score).is_not(None))
    )
    if start is not None:
        stmt = stmt.where(col(ReviewItem.pair_ts) >= start)
    if end is not None:
        stmt = stmt.where(col(ReviewItem.pair_ts) < end)
    if categories:
        stmt = stmt.where(col(ReviewItem.category).in_(categories))
    if languages:
        stmt = stmt.where(col(ReviewItem.language).in_(languages))
    teacher, student, n = session.exec(stmt).one()
    return ReviewScores(
        None if teacher is None else float(teacher),
        None if student is None else float(student),
        int(n),
    )


def side_by_side(
    con: duckdb.DuckDBPyConnection,
    f: Filters,
    *,
    method: str | None = None,
    flat_monthly_usd: float = 0.0,
    scores: ReviewScores | None = None,
) -> pd.DataFrame:
    """Teacher vs student, one row each: requests, cost_per_1k (USD; the student's includes
    its flat monthly cost spread over the period's days), p50_ms, p95_ms, error_rate,
    mean_similarity (student row, of ``method``), mean_review_score."""
    # Three scans, each cheaper than one that does it all (10M pairs: 0.72 s as one query,
    # about 0.55 s as these): the percentiles of both sides as one grouped aggregate (its
    # two groups are finished in parallel), the sums, and the days (a DISTINCT aggregate
    # beside the others makes DuckDB run the whole scan another way).
    row = query(
        con,
        f"""
        SELECT count(*) AS t_req, coalesce(sum(teacher_cost_usd), 0) AS t_cost,
          count(*) FILTER (WHERE teacher_failed) / count(*) AS t_err,
          count(student_outcome) AS s_req, coalesce(sum(student_cost_usd), 0) AS s_cost,
          count(*) FILTER (WHERE student_outcome NOT IN ('ok', 'unsupported'))
            / count(*) FILTER (WHERE student_outcome <> 'unsupported') AS s_err,
          avg(similarity) FILTER (WHERE similarity_method = $method) AS sim
        FROM facts WHERE {WHERE}
        """,
        f,
        method=method,
    ).iloc[0]
    q = query(
        con,
        f"""
        SELECT who, quantile_cont(ms, [0.5, 0.95]) AS q FROM (
          SELECT 'teacher' AS who, teacher_latency_ms AS ms FROM facts
            WHERE {WHERE} AND NOT teacher_failed
          UNION ALL
          SELECT 'student', student_latency_ms FROM facts
            WHERE {WHERE} AND student_outcome = 'ok'
        ) GROUP BY who
        """,
        f,
    )
    pct = dict(zip(q["who"], q["q"], strict=True))  # who -> [p50, p95] (a list cell)
    scores = scores or ReviewScores(None, None, 0)
    days = query(con, f"SELECT count(DISTINCT lts::DATE) AS days FROM facts WHERE {WHERE}", f)
    s_cost = float(row["s_cost"]) + flat_monthly_usd * int(days["days"].iloc[0]) / DAYS_PER_MONTH

    def per_1k(cost: float, requests: int) -> float | None:
        return cost / requests * 1000 if requests else None

    def num(value: Any) -> float | None:
        return None if pd.isna(value) else float(value)

    def pct_at(who: str, i: int) -> float | None:
        values = pct.get(who)
        return None if values is None or pd.isna(values[i]) else float(values[i])

    return pd.DataFrame(
        [
            {
                "model": "teacher",
                "requests": int(row["t_req"]),
                "cost_per_1k_usd": per_1k(float(row["t_cost"]), int(row["t_req"])),
                "p50_ms": pct_at("teacher", 0),
                "p95_ms": pct_at("teacher", 1),
                "error_rate": num(row["t_err"]),
                "mean_similarity": float("nan"),  # the reference itself
                "mean_review_score": scores.teacher_mean,
            },
            {
                "model": "student",
                "requests": int(row["s_req"]),
                "cost_per_1k_usd": per_1k(s_cost, int(row["s_req"])),
                "p50_ms": pct_at("student", 0),
                "p95_ms": pct_at("student", 1),
                "error_rate": num(row["s_err"]),
                "mean_similarity": num(row["sim"]),
                "mean_review_score": scores.student_mean,
            },
        ]
    )

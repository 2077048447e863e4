"""Named DuckDB queries over the shadow log, each returning plain values or a DataFrame.

Queries take parameters (bound, never formatted into SQL from user input) and read the
``pairs`` view created by :func:`core.logstore.create_views`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from core import logstore


def connect(log_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the ``pairs`` view over the log folder."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    logstore.create_views(con, log_dir)
    return con


@dataclass(frozen=True)
class Headline:
    pairs_7d: int
    teacher_spend_mtd: float | None
    mean_similarity_7d: float | None
    similarity_method: str | None
    student_p95_ms_7d: float | None
    student_error_rate_7d: float | None


def headline(con: duckdb.DuckDBPyConnection, now: datetime) -> Headline:
    """The Home page's figures: last 7 days up to ``now`` (naive UTC), and month to date."""
    now = now.replace(tzinfo=None)
    since = now - timedelta(days=7)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    row = con.execute(
        """
        SELECT
          count(*) FILTER (WHERE ts >= $since),
          sum(teacher_cost_usd) FILTER (WHERE ts >= $month_start),
          quantile_cont(student_latency_ms, 0.95)
            FILTER (WHERE ts >= $since AND student_error IS NULL),
          avg(CASE WHEN student_error IS NOT NULL THEN 1.0 ELSE 0.0 END)
            FILTER (WHERE ts >= $since AND student_model IS NOT NULL)
        FROM pairs WHERE ts <= $now
        """,
        {"since": since, "month_start": month_start, "now": now},
    ).fetchone()
    sim = con.execute(
        """
        SELECT similarity_method, avg(similarity) FROM pairs
        WHERE ts >= $since AND ts <= $now AND similarity IS NOT NULL
        GROUP BY 1 ORDER BY count(*) DESC LIMIT 1
        """,
        {"since": since, "now": now},
    ).fetchone()
    return Headline(
        pairs_7d=int(row[0] or 0),
        teacher_spend_mtd=row[1],
        mean_similarity_7d=sim[1] if sim else None,
        similarity_method=sim[0] if sim else None,
        student_p95_ms_7d=row[2],
        student_error_rate_7d=row[3],
    )

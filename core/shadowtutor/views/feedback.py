"""Users' feedback beside the answers it is about (read-only, DuckDB over the log's ``pairs``
and ``feedback`` views).

:func:`arm_counts` is what the rollout's comparison reads: per (category, arm), where the arm
is who served the answer (``routing.served_by``: ``student`` or ``teacher``), how many
answers, how many rated, thumbed down, regenerated, and failed. :func:`by_day` and
:func:`figure` are the Quality page's chart of feedback over time.

An answer counts once (a request's record of the given student, else its primary record).
Its feedback is folded per request: ``rated`` when it has a thumbs or a rating, ``thumbs_down``
when its latest thumbs is down, ``regenerated`` when a regenerate was recorded on it,
``negative`` when any event says it was bad (:func:`shadowtutor.log.feedback.negative_sql`).
A request the student was routed and failed on is the teacher's answer (served_by says so);
it is counted in that row's ``fell_back``, so an intent-to-treat reading can move it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go

from shadowtutor.config import Settings
from shadowtutor.log import analytics, feedback, read, sql
from shadowtutor.log.analytics import Filters

TEACHER, STUDENT = "#4C78A8", "#F58518"

# One row an answer, with its feedback folded (the parameters: $since, $until, $student).
_ANSWERS = f"""
WITH a AS (
  SELECT request_id, ts, coalesce(category, '(none)') AS category,
    coalesce(served_by, 'teacher') AS arm,
    CASE WHEN coalesce(served_by, 'teacher') = 'student' THEN student_error IS NOT NULL
         ELSE teacher_error IS NOT NULL END AS failed,
    json_extract_string(metadata, '$.fallback') IS NOT NULL AS fell_back
  FROM pairs
  WHERE (CAST($since AS TIMESTAMP) IS NULL OR ts >= CAST($since AS TIMESTAMP))
    AND (CAST($until AS TIMESTAMP) IS NULL OR ts < CAST($until AS TIMESTAMP))
    AND (CASE WHEN CAST($student AS VARCHAR) IS NULL THEN is_primary
         ELSE student_name = CAST($student AS VARCHAR) END)
), f AS (
  SELECT request_id,
    count(*) FILTER (WHERE kind IN ('thumbs', 'rating')) > 0 AS rated,
    arg_max(value, ts) FILTER (WHERE kind = 'thumbs') AS thumbs,
    count(*) FILTER (WHERE kind = 'regenerate') > 0 AS regenerated,
    request_id IN ({feedback.DISLIKED_SQL}) AS negative
  FROM feedback GROUP BY request_id
)
SELECT a.*, coalesce(f.rated, false) AS rated, coalesce(f.thumbs < 0, false) AS thumbs_down,
  coalesce(f.regenerated, false) AS regenerated, coalesce(f.negative, false) AS negative
FROM a LEFT JOIN f USING (request_id)
"""


@dataclass(frozen=True)
class ArmCounts:
    """One (category, arm)'s answers and what users said of them."""

    category: str
    arm: str  # "student" or "teacher": who served the answers
    answers: int
    rated: int  # with a thumbs or a rating
    thumbs_down: int  # whose latest thumbs is down
    regenerates: int  # regenerated (implicit, or sent by the app)
    errors: int  # the served answer was an error
    negative: int  # any event saying it was bad (thumbs down, low rating, correction, flag...)
    fell_back: int  # routed to the student, which failed: the teacher served (arm teacher)


def _connect(con_or_settings: Any) -> duckdb.DuckDBPyConnection:
    if isinstance(con_or_settings, Settings):
        log_dir = con_or_settings.log_path
        con = sql.connect(log_dir)
        read.create_views(con, log_dir)
        return con
    given: duckdb.DuckDBPyConnection = con_or_settings
    return given


def _naive_utc(ts: datetime | None) -> datetime | None:
    if ts is None or ts.tzinfo is None:
        return ts
    return ts.astimezone(UTC).replace(tzinfo=None)


def arm_counts(
    con_or_settings: Any,
    since: datetime | None,
    student: str | None,
    category: str | None = None,
    *,
    until: datetime | None = None,
) -> list[ArmCounts]:
    """Per (category, arm), answers from ``since`` (UTC; an epoch's start) up to ``until``,
    of ``student``'s records (None: each request's primary record); ``category`` picks one.
    ``con_or_settings``: a DuckDB connection with the log's views, or the settings."""
    con = _connect(con_or_settings)
    try:
        rows = _arm_rows(con, since, student, category, until)
    except duckdb.Error as exc:
        raise feedback.unreadable(exc) from exc
    return [ArmCounts(str(c), str(a), *(int(n) for n in counts)) for c, a, *counts in rows]


def _arm_rows(
    con: duckdb.DuckDBPyConnection,
    since: datetime | None,
    student: str | None,
    category: str | None,
    until: datetime | None,
) -> list[Any]:
    return con.execute(
        f"""
        SELECT category, arm, count(*), count(*) FILTER (WHERE rated),
          count(*) FILTER (WHERE thumbs_down), count(*) FILTER (WHERE regenerated),
          count(*) FILTER (WHERE failed), count(*) FILTER (WHERE negative),
          count(*) FILTER (WHERE fell_back)
        FROM ({_ANSWERS})
        WHERE CAST($category AS VARCHAR) IS NULL OR category = CAST($category AS VARCHAR)
        GROUP BY ALL ORDER BY 1, 2
        """,
        {
            "since": _naive_utc(since),
            "until": _naive_utc(until),
            "student": student,
            "category": category,
        },
    ).fetchall()


def by_day(con: duckdb.DuckDBPyConnection, f: Filters, tz: str = "UTC") -> pd.DataFrame:
    """day, arm, the day's answers, rated, thumbs_down and regenerates, and over the trailing
    week (:data:`WINDOW_DAYS` days up to the day): thumbs_down_rate (of rated answers),
    regenerate_rate (of answers; each none below :data:`MIN_COUNT`) and the counts behind
    them (``*_7d``). The filter's period
    and categories, by the local day of the answer; where the student served, only the
    categories it served (``attrs["categories"]``); each side from its first answer on, all
    from the first day with feedback; empty when no answer in the selection has feedback."""
    start, end = analytics.utc_bounds(f, tz)
    try:
        answers = con.execute(
            f"SELECT ts, category, arm, rated, thumbs_down, regenerated FROM ({_ANSWERS})",
            {"since": _naive_utc(start), "until": _naive_utc(end), "student": f.student},
        ).df()
    except duckdb.Error as exc:
        raise feedback.unreadable(exc) from exc
    if f.categories:
        answers = answers[answers["category"].isin(f.categories)]
    if answers.empty or not (answers["rated"].any() or answers["regenerated"].any()):
        return pd.DataFrame(columns=_DAY_COLUMNS)
    local = pd.to_datetime(answers["ts"]).dt.tz_localize("UTC").dt.tz_convert(analytics.zone(tz))
    answers["day"] = local.dt.date
    # like with like: where the student served, only the categories it served (a student
    # serving the easy categories would look better than a teacher answering all of them)
    served = sorted(set(answers.loc[answers["arm"] == "student", "category"]))
    if served:
        answers = answers[answers["category"].isin(served)]
    # from the first day with feedback on: days before it would read as a ramp from zero
    first = answers.loc[answers["rated"] | answers["regenerated"], "day"].min()
    answers = answers[answers["day"] >= first]
    daily = (
        answers.groupby(["arm", "day"])
        .agg(
            answers=("ts", "size"),
            rated=("rated", "sum"),
            thumbs_down=("thumbs_down", "sum"),
            regenerates=("regenerated", "sum"),
        )
        .astype(int)
    )
    days = pd.date_range(min(answers["day"]), max(answers["day"]), freq="D").date
    parts = []
    for arm, part in daily.groupby(level="arm"):
        part = part.droplevel("arm").reindex(days, fill_value=0)
        # a trailing week: one day holds a handful of rated answers on the smaller side
        week = part.rolling(WINDOW_DAYS, min_periods=1).sum()
        enough_rated = week["rated"].where(week["rated"] >= MIN_COUNT)
        part["thumbs_down_rate"] = week["thumbs_down"] / enough_rated
        enough = week["answers"].where(week["answers"] >= MIN_COUNT)
        part["regenerate_rate"] = week["regenerates"] / enough
        part["rated_7d"], part["thumbs_down_7d"] = week["rated"], week["thumbs_down"]
        part["answers_7d"], part["regenerates_7d"] = week["answers"], week["regenerates"]
        first = part.index[part["answers"] > 0][0]  # from the side's first answer on
        parts.append(part.loc[first:].rename_axis("day").reset_index().assign(arm=str(arm)))
    out: pd.DataFrame = pd.concat(parts, ignore_index=True)[_DAY_COLUMNS]
    out.attrs["categories"] = served  # the categories compared (empty: all, teacher only)
    return out


WINDOW_DAYS = 7
MIN_COUNT = 20  # a week with fewer rated answers (or answers) has no rate: one in two is noise
_DAY_COLUMNS = [
    "day", "arm", "answers", "rated", "thumbs_down", "regenerates", "thumbs_down_rate",
    "regenerate_rate", "answers_7d", "rated_7d", "thumbs_down_7d", "regenerates_7d",
]  # fmt: skip


def figure(df: pd.DataFrame) -> go.Figure:
    """Thumbs-down rate (of rated answers, solid) and regenerate rate (of answers, dotted)
    of the trailing week, per day, one colour for each side: who served the answer."""
    fig = go.Figure()
    for arm, color in (("teacher", TEACHER), ("student", STUDENT)):
        part = df[df["arm"] == arm]
        if part.empty:
            continue
        fig.add_scatter(
            x=part["day"],
            y=part["thumbs_down_rate"],
            name=f"{arm}: thumbs down",
            line={"color": color},
            customdata=part[["thumbs_down_7d", "rated_7d"]],
            hovertemplate="%{x}<br>%{y:.1%} (%{customdata[0]} of %{customdata[1]} rated "
            "in 7 days)<extra></extra>",
        )
        fig.add_scatter(
            x=part["day"],
            y=part["regenerate_rate"],
            name=f"{arm}: regenerated",
            line={"color": color, "dash": "dot"},
            customdata=part[["regenerates_7d", "answers_7d"]],
            hovertemplate="%{x}<br>%{y:.1%} (%{customdata[0]} of %{customdata[1]} answers "
            "in 7 days)<extra></extra>",
        )
    fig.update_yaxes(title="share", tickformat=".0%", rangemode="tozero")
    fig.update_layout(
        title="Users' feedback by who served the answer (each day: the week up to it)",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=340,
    )
    return fig

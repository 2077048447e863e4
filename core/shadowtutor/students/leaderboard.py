"""The leaderboard: active students ranked on the prompts they all answered, paired
differences between two of them, and each version's learning curve.

Plain functions over plain rows: :func:`load_rows` reads one row per (request, student) from
the log and the review and judge scores of each pair from the database; everything else is
arithmetic over those rows, with the bounds of :mod:`shadowtutor.gate.stats` (Wilson for
rates, order statistics for P95 latency, the bootstrap for means). Two students are compared
on the same requests, so a difference is paired; its interval is two-sided at 95% (two
one-sided bounds at 97.5%), and an interval that holds 0 is called a tie.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sqlmodel import Session, col, select

from shadowtutor.gate import stats
from shadowtutor.gate.criteria import GateConfig
from shadowtutor.log import read, schema
from shadowtutor.students.registry import StudentSpec
from shadowtutor.tables import JudgeScore, Review

ONE_SIDED = 0.975  # two one-sided bounds: a 95% interval
# Fewer shared prompts than this with a metric from both students: no difference is called.
# (Two reviewed prompts that differ by the same amount gave a zero-width "interval" and a
# winner; issue 27 item 8.)
MIN_PAIRED = 10

_ROWS = f"""
SELECT request_id, student_name, id, ts, category, student_model,
       {schema.student_ok_sql("student_")} AS ok, student_latency_ms, similarity,
       student_cost_usd
FROM pairs
WHERE ts >= $since AND coalesce(source, '') <> 'playground' AND {schema.student_asked_sql()}
  AND NOT {schema.student_unsupported_sql()}
"""
# (A request whose feature the student's server refused, ``unsupported: ...``, is no answer
# to compare: left out, as the gate leaves it out of the success rate.)


def load_rows(log_dir: Any, session: Session, since: datetime) -> pd.DataFrame:
    """One row per (request, student) since ``since``, with its human review score (mean of
    current reviews) and its judge score, when there are."""
    con = duckdb.connect()  # every student's records (the gate's connection has one a request)
    con.execute("SET TimeZone = 'UTC'")
    read.create_views(con, log_dir)
    df = con.execute(_ROWS, {"since": since.astimezone(UTC).replace(tzinfo=None)}).df()
    if df.empty:
        return df.assign(review=pd.Series(dtype=float), judge=pd.Series(dtype=float))
    ids = df["id"].tolist()
    reviews = session.exec(
        select(Review.pair_id, Review.student_score).where(
            col(Review.is_current), col(Review.student_score).is_not(None)
        )
    ).all()
    judged = session.exec(
        select(JudgeScore.pair_id, JudgeScore.student_score).where(
            col(JudgeScore.student_score).is_not(None)
        )
    ).all()
    wanted = set(ids)
    rev = pd.DataFrame([r for r in reviews if r[0] in wanted], columns=["id", "review"])
    jud = pd.DataFrame([j for j in judged if j[0] in wanted], columns=["id", "judge"])
    df = df.merge(rev.groupby("id", as_index=False)["review"].mean(), on="id", how="left")
    return df.merge(jud.groupby("id", as_index=False)["judge"].mean(), on="id", how="left")


def shared(rows: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The rows of requests every one of ``names`` answered (the same prompts)."""
    mine = rows[rows["student_name"].isin(names)]
    if mine.empty:
        return mine
    per = mine.groupby("request_id")["student_name"].nunique()
    return mine[mine["request_id"].isin(per[per == len(set(names))].index)]


# --- one student's line ------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    n: int
    value: float | None
    lower: float | None = None
    upper: float | None = None


def _rate(ok: pd.Series) -> Metric:
    n, k = int(len(ok)), int(ok.sum())
    if n == 0:
        return Metric(0, None)
    lo, hi = stats.wilson_bounds(k, n, confidence=ONE_SIDED)
    return Metric(n, k / n, lo, hi)


def _mean(values: pd.Series) -> Metric:
    vals = values.dropna().to_numpy(dtype=float)
    if len(vals) == 0:
        return Metric(0, None)
    found = stats.bootstrap_mean_bounds(vals, confidence=ONE_SIDED, resamples=500)
    lo, hi = found if found else (None, None)
    return Metric(len(vals), float(vals.mean()), lo, hi)


def _p95(values: pd.Series) -> Metric:
    vals = values.dropna().to_numpy(dtype=float)
    if len(vals) == 0:
        return Metric(0, None)
    lo, hi = stats.quantile_bounds(vals, 0.95, confidence=ONE_SIDED)
    return Metric(len(vals), float(np.quantile(vals, 0.95)), lo, hi)


@dataclass(frozen=True)
class Standing:
    name: str
    model: str
    version: str
    success: Metric
    p95_ms: Metric
    similarity: Metric
    review: Metric
    judge: Metric
    projected_monthly_usd: float | None
    verdict: str  # "would pass the gate now" | "needs N more reviews" | what fails


def _verdict(s: Standing, config: GateConfig) -> str:
    if s.review.n < config.min_reviews:
        return f"needs {config.min_reviews - s.review.n} more reviews"
    fails = []
    if s.success.lower is None or s.success.lower < config.min_success_rate:
        fails.append("success rate")
    if s.p95_ms.upper is None or s.p95_ms.upper > config.max_p95_latency_ms:
        fails.append("P95 latency")
    if s.review.lower is None or s.review.lower < config.min_review_score:
        fails.append("review score")
    return "would pass the gate now" if not fails else "not yet: " + ", ".join(fails)


def standings(
    rows: pd.DataFrame,
    specs: list[StudentSpec],
    config: GateConfig,
    *,
    days: float,
) -> list[Standing]:
    """The students in ``specs`` on their shared prompts, best first (review score's lower
    bound, then success rate's). Projected cost: the month's flat cost plus the per-request
    cost at this window's volume."""
    both = shared(rows, [s.name for s in specs])
    out = []
    for spec in specs:
        mine = both[both["student_name"] == spec.name]
        per_day = len(mine) / days if days else 0.0
        per_request = mine["student_cost_usd"].fillna(0).mean() if len(mine) else 0.0
        cost = (spec.monthly_cost_usd or 0.0) + float(per_request) * per_day * 30
        s = Standing(
            spec.name,
            spec.model,
            spec.version,
            _rate(mine["ok"]),
            _p95(mine.loc[mine["ok"], "student_latency_ms"]),
            _mean(mine["similarity"]),
            _mean(mine["review"]),
            _mean(mine["judge"]),
            cost if len(mine) else None,
            "",
        )
        out.append(Standing(**{**s.__dict__, "verdict": _verdict(s, config)}))

    def key(s: Standing) -> tuple[float, float, float]:
        return (-(s.review.lower or 0), -(s.judge.value or 0), -(s.success.lower or 0))

    return sorted(out, key=key)


def standings_frame(rows: list[Standing]) -> pd.DataFrame:
    """The table the page shows: each metric with its bounds as text."""

    def show(m: Metric, fmt: str) -> str:
        if m.value is None:
            return "no data"
        bound = "" if m.lower is None or m.upper is None else f" [{m.lower:{fmt}}, {m.upper:{fmt}}]"
        return f"{m.value:{fmt}}{bound}"

    return pd.DataFrame(
        [
            {
                "rank": i,
                "student": s.name,
                # the verdict next to the name: last, it sat off the right edge (issue 27)
                "gate": s.verdict,
                "success rate": show(s.success, ".1%"),
                "P95 latency ms": show(s.p95_ms, ".0f"),
                "similarity": show(s.similarity, ".2f"),
                "review score": show(s.review, ".2f") + f" (n={s.review.n})",
                "judge score": show(s.judge, ".2f") + f" (n={s.judge.n})",
                "projected USD/month": "n/a"
                if s.projected_monthly_usd is None
                else f"{s.projected_monthly_usd:,.2f}",
                "prompts": s.success.n,
                "model": s.model,
                "version": s.version,
            }
            for i, s in enumerate(rows, start=1)
        ]
    )


# --- paired differences ------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    metric: str
    n: int
    mean: float | None  # a minus b
    lower: float | None
    upper: float | None
    verdict: str  # "<a> better" | "<b> better" | "tie" | "too few shared prompts"


def _paired(metric: str, diffs: np.ndarray, a: str, b: str, higher_is_better: bool) -> Difference:
    diffs = diffs[~np.isnan(diffs)]
    if len(diffs) < MIN_PAIRED:
        return Difference(metric, len(diffs), None, None, None, "too few shared prompts")
    lo: float | None
    hi: float | None
    if np.all(diffs == diffs[0]):
        lo = hi = float(diffs[0])
    else:
        found = stats.bootstrap_mean_bounds(diffs, confidence=ONE_SIDED, resamples=1000)
        lo, hi = found if found else (None, None)
    mean = float(diffs.mean())
    if lo is None or hi is None or lo <= 0 <= hi:
        verdict = "tie"
    else:
        a_ahead = (lo > 0) == higher_is_better
        verdict = f"{a if a_ahead else b} better"
    return Difference(metric, len(diffs), mean, lo, hi, verdict)


def paired_differences(rows: pd.DataFrame, a: str, b: str) -> list[Difference]:
    """``a`` minus ``b`` on the requests both answered, per metric, with a 95% interval."""
    both = shared(rows, [a, b])
    wide = both.pivot_table(
        index="request_id",
        columns="student_name",
        values=["ok", "similarity", "review", "judge", "student_latency_ms"],
        aggfunc="mean",
    )
    out = []
    for metric, column, higher in (
        ("success", "ok", True),
        ("similarity", "similarity", True),
        ("review score", "review", True),
        ("judge score", "judge", True),
        ("latency ms", "student_latency_ms", False),
    ):
        if wide.empty or (column, a) not in wide or (column, b) not in wide:
            out.append(Difference(metric, 0, None, None, None, "too few shared prompts"))
            continue
        diffs = (wide[(column, a)] - wide[(column, b)]).to_numpy(dtype=float)
        out.append(_paired(metric, diffs, a, b, higher))
    return out


# How each metric's difference reads: success in percentage points, latency in whole ms.
_DIFF_FORMAT = {"success": (100.0, "+.1f", " pp"), "latency ms": (1.0, "+,.0f", " ms")}


def _signed(metric: str, value: float) -> str:
    scale, fmt, unit = _DIFF_FORMAT.get(metric, (1.0, "+.2f", ""))
    text = f"{value * scale:{fmt}}"
    if not text.strip("+-0.,"):  # rounds to zero: no sign ("-0.0 pp" read as a loss)
        text = text.lstrip("+-")
    return f"{text}{unit}"


def no_comparison(d: Difference) -> str:
    """Why a metric has no difference, in words ("shared prompts 1 · n/a · no shared data"
    said nothing a reader could act on)."""
    what = {"success": "an answer", "latency ms": "a latency"}.get(d.metric, f"a {d.metric}")
    if d.n == 0:
        return f"no prompt has {what} from both students: nothing to compare yet"
    return (
        f"only {d.n} prompt{'' if d.n == 1 else 's'} with {what} from both students: "
        f"too few to compare ({MIN_PAIRED} needed)"
    )


def differences_frame(diffs: list[Difference]) -> pd.DataFrame:
    rows = []
    for d in diffs:
        if d.mean is None:
            rows.append({"metric": d.metric, "shared prompts": d.n, "difference": "",
                         "95% interval": "", "verdict": no_comparison(d)})  # fmt: skip
            continue
        interval = (
            "" if d.lower is None or d.upper is None
            else f"[{_signed(d.metric, d.lower)}, {_signed(d.metric, d.upper)}]"
        )  # fmt: skip
        rows.append(
            {
                "metric": d.metric,
                "shared prompts": d.n,
                "difference": _signed(d.metric, d.mean),
                "95% interval": interval,
                "verdict": d.verdict,
            }
        )
    return pd.DataFrame(rows)


# --- versions and the learning curve -----------------------------------------------------


def learning_curve(rows: pd.DataFrame, specs: list[StudentSpec]) -> pd.DataFrame:
    """Per student (labelled with its version and the export it was trained on), per day:
    each readiness metric over all of that student's data up to the end of that day."""
    labels = {s.name: _label(s) for s in specs}
    out = []
    mine = rows[rows["student_name"].isin(labels)].copy()
    if mine.empty:
        return pd.DataFrame(columns=["student", "day", "metric", "value", "n"])
    mine["day"] = pd.to_datetime(mine["ts"]).dt.floor("D")
    for name, group in mine.groupby("student_name"):
        group = group.sort_values("ts")
        for day in sorted(group["day"].unique()):
            upto = group[group["day"] <= day]
            for metric, values in (
                ("success rate", upto["ok"].astype(float)),
                ("similarity", upto["similarity"]),
                ("human score", upto["review"]),
                ("judge score", upto["judge"]),
            ):
                vals = values.dropna()
                if len(vals):
                    out.append(
                        {
                            "student": labels[str(name)],
                            "day": day,
                            "metric": metric,
                            "value": float(vals.mean()),
                            "n": len(vals),
                        }
                    )
    return pd.DataFrame(out)


def _label(spec: StudentSpec) -> str:
    parts = [spec.name]
    if spec.version:
        parts.append(spec.version)
    if spec.trained_on:
        parts.append(f"trained on {spec.trained_on}")
    return " · ".join(parts)


def window_start(now: datetime | None, days: int) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(days=days)


def load(
    settings: Any, *, days: int, now: datetime | None = None
) -> tuple[pd.DataFrame, list[StudentSpec], list[StudentSpec]]:
    """The log rows of the last ``days`` days, the active students, and every student ever
    registered (for the learning curve, which shows retired versions too)."""
    from shadowtutor import db
    from shadowtutor.students.registry import active_specs, list_students, spec_of

    with db.session_scope(settings.db_url) as session:
        rows = load_rows(settings.log_path, session, window_start(now, days))
        active = active_specs(settings, session=session)
        every = [spec_of(r, settings) for r in list_students(session=session, include_retired=True)]
    return rows, active, every or active


def curve_figure(curve: pd.DataFrame) -> Any:
    """The learning curve: one panel per readiness metric, one line per student version."""
    import plotly.express as px

    fig = px.line(
        curve,
        x="day",
        y="value",
        color="student",
        facet_col="metric",
        facet_col_wrap=2,
        facet_row_spacing=0.14,  # room for each panel's title and x ticks (they collided)
        facet_col_spacing=0.07,
        markers=True,
        hover_data=["n"],
    )
    fig.update_yaxes(matches=None, title="", showticklabels=True)
    fig.update_xaxes(title="")
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    fig.update_xaxes(nticks=6)
    fig.update_layout(
        height=600,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"title": "", "orientation": "h", "y": -0.08},
    )
    return fig

"""What the Readiness page shows, as plain data and Plotly figures (no Streamlit here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from sqlmodel import Session

from shadowtutor import db
from shadowtutor.config import Settings
from shadowtutor.gate import (
    buckets,
    criteria,
    decisions,
    evaluate,
    guard,
    guard_evidence,
    outcomes,
    rollout,
)
from shadowtutor.gate.evidence import review_rows, served_now
from shadowtutor.tables import GateDecision, as_utc
from shadowtutor.views import criteria_table

LEVEL = {criteria.GO: 2, outcomes.INCONCLUSIVE: 1, criteria.NO_GO: 0}
COLOURS = {criteria.GO: "#2e7d32", outcomes.INCONCLUSIVE: "#f9a825", criteria.NO_GO: "#c62828"}


@dataclass(frozen=True)
class View:
    decision: GateDecision | None  # newest recorded decision
    preview: criteria.Decision | None  # a live decision, when none is recorded yet
    approval: decisions.Approval
    state: rollout.RolloutState
    served: int
    blockers: list[str]
    next_stage: int | None
    audit: list[decisions.AuditRow]
    history: list[GateDecision]  # newest first, for looking up a past decision's evidence
    pace: dict[str, dict[str, float]] = field(default_factory=dict)  # see ``pace``
    student: str | None = None  # the student these decisions are about (None: any)
    feedback: guard.Report | None = None  # users' feedback, student against teacher

    @property
    def outcome(self) -> str:
        if self.decision is not None:
            return self.decision.outcome
        return self.preview.outcome if self.preview else outcomes.INCONCLUSIVE

    @property
    def evidence(self) -> dict[str, Any]:
        if self.decision is not None:
            return self.decision.evidence
        return self.preview.evidence() if self.preview else {}


def load(
    settings: Settings,
    config: criteria.GateConfig,
    student: str | None = None,
    *,
    feedback: guard.Report | None = None,
) -> View:
    """Everything the page needs, read in one go (``student``: that student's decisions and
    evidence; None: every decision, and each request's primary record). ``feedback``: the
    guard's report on ``student``, already read (the page keeps it for a minute)."""
    if feedback is None:
        feedback = guard_evidence.report(settings, config, now=datetime.now(UTC), student=student)
    with db.session_scope(settings.db_url) as session:
        latest = decisions.latest(session=session, student=student)
        state = rollout.state(session=session)
        served = served_now(settings, session)
        view = View(
            decision=latest,
            preview=None,
            approval=decisions.approval(session=session, student=student),
            state=state,
            served=served,
            blockers=rollout.blockers(
                session=session,
                config=config,
                served_at_stage=served,
                student=student,
                feedback=feedback,
            ),
            next_stage=rollout.next_stage(config, state.stage),
            audit=decisions.audit(session=session),
            history=decisions.history(session=session, limit=200, student=student),
            pace=pace(session=session, config=config),
            student=student,
            feedback=feedback,
        )
    if latest is None:
        now = datetime.now(UTC)
        preview = evaluate.current(settings, config, now=now, student=student)
        view = View(**{**view.__dict__, "preview": preview})
    return view


def headline(view: View) -> tuple[str, str]:
    """(level, text) for the banner: level is success | error | warning."""
    ev = view.evidence
    level = {criteria.GO: "success", criteria.NO_GO: "error"}.get(view.outcome, "warning")
    where = (
        f"decision #{view.decision.id}, {view.decision.created_at:%Y-%m-%d %H:%M} UTC"
        if view.decision
        else "live preview, not recorded yet"
    )
    return level, f"{ev.get('summary') or criteria.label(view.outcome)} ({where})"


def criteria_note(decision: GateDecision | None, config: criteria.GateConfig) -> str:
    """Which criteria file the shown decision was made under (its version and SHA-256, kept
    on every decision), and whether the file has changed since ("" for a live preview, which
    uses the current file)."""
    if decision is None:
        return ""
    said = (
        f"Decision #{decision.id} was made under criteria version "
        f"{decision.config_version or '(unversioned)'}, sha256 {decision.config_hash[:12]}"
    )
    if decision.config_hash == config.hash:
        return said + " (the current file)."
    return said + (
        f"; the criteria file has changed since (now version {config.version}, sha256 "
        f"{config.hash[:12]}): the next evaluation starts a new evidence epoch."
    )


def eligible_value(categories: list[str] | tuple[str, ...]) -> str:
    """The metric's value: how many categories the rollout serves ("none yet", never "-"); the
    names go in :func:`eligible_line`, where they are never cut."""
    if not categories:
        return "none yet"
    return f"{len(categories)} categor{'y' if len(categories) == 1 else 'ies'}"


def eligible_line(categories: list[str] | tuple[str, ...], view: View) -> str:
    """One line under the metrics: the eligible categories in full, or why there are none
    though the decision says GO (an admin has not approved it yet); "" when the metric says
    it all (none, and no GO)."""
    if categories:
        return "Eligible now: " + ", ".join(categories)
    ready = view.evidence.get("eligible") or []
    if view.outcome == criteria.GO and ready:
        return (
            f"Eligible now: none. The gate says GO for {', '.join(ready)}: they become eligible "
            "once an admin approves the decision and advances the rollout."
        )
    return ""


PACE_DAYS = 7  # "today's pace": the last week's reviews and the window's pairs, per day
# What ``Criterion.n`` counts, per criterion key: reviews or pairs.
REVIEW_KEYS = ("review_score", "teacher_gap")


def pace(
    *, session: Session, config: criteria.GateConfig, now: datetime | None = None
) -> dict[str, dict[str, float]]:
    """Per category: human reviews a day over the last week (``reviews``). Pairs a day come
    from the evidence itself (the window's pairs over ``window_days``)."""
    now = as_utc(now or datetime.now(UTC))
    since = now - timedelta(days=PACE_DAYS)
    out: dict[str, dict[str, float]] = {}
    for r in review_rows(session=session, config=config):
        if r.score is not None and r.created_at >= since:
            cat = out.setdefault(r.category, {"reviews": 0.0})
            cat["reviews"] += 1 / PACE_DAYS
    return out


def _at_pace(
    c: dict[str, Any],
    evidence: dict[str, Any],
    rates: dict[str, dict[str, float]],
    window_days: float,
) -> str:
    """ "about N more ... needed" plus how long that takes at today's pace."""
    needed = c.get("needed")
    if not needed or c["status"] != outcomes.INCONCLUSIVE:
        return c["missing"] or "-"
    if c["key"] in REVIEW_KEYS:
        per_day, what = rates.get(c["category"], {}).get("reviews", 0.0), "reviews"
    else:
        pairs = next(
            (x["n"] for x in evidence.get("criteria", [])
             if x["key"] == "pairs" and x["category"] == c["category"]),
            0,
        )  # fmt: skip
        per_day, what = pairs / max(window_days, 1), "pairs"
    if per_day <= 0:
        return f"{c['missing']} (no {what} in the last {PACE_DAYS} days)"
    days = needed / per_day
    when = "under a day" if days < 1 else f"about {days:,.0f} day{'s' if days >= 1.5 else ''}"
    return f"{c['missing']}: {when} at today's pace ({per_day:,.1f} {what} a day)"


def plain(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The criteria of plain requests (the other kinds: :mod:`shadowtutor.views.kinds`)."""
    return [c for c in evidence.get("criteria", []) if c.get("kind", "plain") == "plain"]


def criteria_frame(evidence: dict[str, Any]) -> pd.DataFrame:
    """One row a criterion, every column short (:func:`shadowtutor.views.criteria_table.frame`);
    bounds are anytime valid (they hold at every evaluation)."""
    return criteria_table.frame(plain(evidence))


def criteria_notes(
    evidence: dict[str, Any],
    rates: dict[str, dict[str, float]] | None = None,
    window_days: float = 14.0,
) -> list[str]:
    """Lines under the table: what each criterion that does not pass is missing (with how
    long that takes at today's pace), then what the judge saved, in words."""
    rows = plain(evidence)

    def missing(c: dict[str, Any]) -> str:
        return _at_pace(c, evidence, rates or {}, window_days)

    return criteria_table.missing_lines(rows, missing) + criteria_table.judge_lines(rows)


def epoch_note(evidence: dict[str, Any]) -> str:
    """ "Evidence since <date>, because <reason>." ("" for decisions from before epochs)."""
    epoch = evidence.get("epoch")
    if not epoch:
        return ""
    since = as_utc(datetime.fromisoformat(epoch["since"]))
    return f"Evidence since {since:%Y-%m-%d %H:%M} UTC, because {epoch['reason']}."


def budget_note(evidence: dict[str, Any]) -> str:
    """How the error budget is spent, in words ("" for decisions recorded before it was)."""
    budget = evidence.get("budget")
    return f"{budget[:1].upper()}{budget[1:]}." if budget else ""  # it starts "error budget"


def judge_note(evidence: dict[str, Any]) -> str:
    """One line on the judge behind the evidence (never counted as reviews)."""
    j = evidence.get("judge")
    if not j:
        return (
            "No LLM judge scores in this evidence: the review criteria use human reviews only "
            "(shadowtutor judge run scores pairs; see Review progress for its calibration)."
        )
    kappa = "-" if j.get("weighted_kappa") is None else f"{j['weighted_kappa']:.2f}"
    bias = "-" if j.get("mean_bias") is None else f"{j['mean_bias']:+.2f}"
    said = (
        f"Judge {j.get('judge_version')}: weighted kappa {kappa} and mean bias {bias} against "
        f"people on {j.get('pairs', 0):,} pairs both scored. "
    )
    before = j.get("before_epoch")
    if before and not before.get("used"):  # calibrated too late: the reviews decide alone
        return said + f"The gate leaves its scores out: {before.get('why', 'not calibrated')}."
    return said + (
        "Judge scores are combined with human reviews (prediction-powered) and are never "
        "counted as reviews."
    )


def calibration_figure(cal: buckets.Calibration, threshold: float | None) -> go.Figure:
    """Mean review score by similarity bucket, with the target and the thresholds."""
    buckets = [b for b in cal.buckets if b.n]
    fig = go.Figure(
        go.Bar(
            x=[(b.low + b.high) / 2 for b in buckets],
            y=[b.mean_score for b in buckets],
            width=[(b.high - b.low) * 0.9 for b in buckets],
            text=[f"n={b.n}" for b in buckets],
            textposition="outside",
            marker_color=[
                COLOURS[criteria.GO] if (b.mean_score or 0) >= cal.target else "#90a4ae"
                for b in buckets
            ],
            name="mean review score",
            hovertemplate="similarity %{x:.2f}<br>mean score %{y:.2f}<extra></extra>",
        )
    )
    # Line labels sit outside the plot area (the target's right of it, the thresholds' above
    # it), where no bar can cover them: inside, "config 0.45" was cut by the next bar and
    # "score 4" sat on the last one (issue 14 item 10).
    fig.add_hline(y=cal.target, line_dash="dot")
    fig.add_annotation(
        x=1, xref="paper", y=cal.target, yref="y", text=f"score {cal.target:g}",
        xanchor="left", showarrow=False, font={"size": 11},
    )  # fmt: skip
    lines = []
    if cal.suggested is not None:
        fig.add_vline(x=cal.suggested, line_color=COLOURS[criteria.GO])
        lines.append((cal.suggested, f"suggested {cal.suggested:.2f}", COLOURS[criteria.GO]))
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", line_color="#455a64")
        lines.append((threshold, f"config {threshold:.2f}", "#455a64"))
    lines.sort()
    for i, (x, text, colour) in enumerate(lines):  # the left label leans left, the other right
        fig.add_annotation(
            x=x, xref="x", y=1, yref="paper", yanchor="bottom", text=text, showarrow=False,
            xanchor="right" if i == 0 and len(lines) > 1 else "left", font={"color": colour,
            "size": 11},
        )  # fmt: skip
    fig.update_layout(
        title=f"Mean review score by similarity ({cal.method}, {cal.label})",
        xaxis_title="similarity",
        yaxis_title="mean student score",
        xaxis_range=[0, 1],
        yaxis_range=[0, 5.6],
        height=380,
        margin={"t": 80, "b": 40, "l": 40, "r": 70},
        showlegend=False,
    )
    return fig


def calibration_note(cal: buckets.Calibration, current: float | None) -> str:
    if cal.suggested is None:
        return (
            f"No suggestion yet: no similarity bucket of {cal.method} reaches a mean score of "
            f"{cal.target:g} from at least 5 reviews, or too few pairs are reviewed."
        )
    return (
        f"Reviewed pairs with {cal.method} similarity ≥ {cal.suggested:.2f} average at least "
        f"{cal.target:g} in every bucket from there up: a suggested threshold (config: "
        f"{current if current is not None else 'none'}). Change it in the criteria file; the "
        "gate never changes it by itself."
    )


def replay_points(
    settings: Settings, config: criteria.GateConfig, days: int = 60, today: date | None = None
) -> list[evaluate.ReplayPoint]:
    end = today or datetime.now(UTC).date()
    return evaluate.replay(settings, config, end - timedelta(days=days - 1), end)


def replay_figure(points: list[evaluate.ReplayPoint]) -> go.Figure:
    df = pd.DataFrame([p.__dict__ for p in points])
    fig = go.Figure()
    if df.empty:
        return fig
    df["level"] = df["outcome"].map(LEVEL)
    fig.add_trace(
        go.Scatter(
            x=df["day"],
            y=df["level"],
            mode="lines",
            line_shape="hv",
            line_color="#b0bec5",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    for outcome, part in df.groupby("outcome"):
        fig.add_trace(
            go.Scatter(
                x=part["day"],
                y=part["level"],
                mode="markers",
                marker={"color": COLOURS[str(outcome)], "size": 9},
                name=criteria.label(str(outcome)),
                customdata=part[["summary", "pairs", "reviews"]],
                hovertemplate="%{x}<br>%{customdata[0]}<br>pairs %{customdata[1]:,}, "
                "reviews %{customdata[2]:,}<extra></extra>",
            )
        )
    fig.update_layout(
        title="Readiness over time (the gate replayed at the end of each day)",
        yaxis={
            "tickvals": [0, 1, 2],
            "ticktext": [criteria.label(o) for o in sorted(LEVEL, key=LEVEL.__getitem__)],
            "range": [-0.4, 2.4],
        },
        height=300,
        margin={"t": 50, "b": 30, "l": 40, "r": 20},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def audit_frame(rows: list[decisions.AuditRow], student: str | None = None) -> pd.DataFrame:
    """The trail with whose each row is; ``student``: only that student's rows and the
    rollout's changes that name no decision (the trail once listed every student's
    decisions under one student's page with no student column, issue 27 item 8)."""
    shown = [r for r in rows if student is None or r.student in (student, "")]
    return pd.DataFrame(
        [
            {
                "When (UTC)": as_utc(r.when).strftime("%Y-%m-%d %H:%M:%S"),
                "Student": r.student or "(rollout)",
                "Who": r.who,
                "What": r.what,
                "Evidence / reason": r.detail,
                "Flag": "OVERRIDE" if r.what.startswith("override") else ("!" if r.flagged else ""),
            }
            for r in shown
        ],
        columns=["When (UTC)", "Student", "Who", "What", "Evidence / reason", "Flag"],
    )


def audit_others(rows: list[decisions.AuditRow], student: str | None) -> int:
    """How many rows of the trail are about other students than ``student``."""
    return 0 if student is None else sum(1 for r in rows if r.student not in (student, ""))

"""What the Readiness page shows, as plain data and Plotly figures (no Streamlit here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import plotly.graph_objects as go

from shadowtutor import db
from shadowtutor.config import Settings
from shadowtutor.gate import criteria as gate
from shadowtutor.gate import decisions, rollout
from shadowtutor.gate import evaluate as gate_eval
from shadowtutor.gate import evidence as gate_data
from shadowtutor.tables import GateDecision, as_utc

LEVEL = {gate.GO: 2, gate.INCONCLUSIVE: 1, gate.NO_GO: 0}
COLOURS = {gate.GO: "#2e7d32", gate.INCONCLUSIVE: "#f9a825", gate.NO_GO: "#c62828"}


@dataclass(frozen=True)
class View:
    decision: GateDecision | None  # newest recorded decision
    preview: gate.Decision | None  # a live decision, when none is recorded yet
    approval: decisions.Approval
    state: rollout.RolloutState
    served: int
    blockers: list[str]
    next_stage: int | None
    audit: list[decisions.AuditRow]
    history: list[GateDecision]  # newest first, for looking up a past decision's evidence

    @property
    def outcome(self) -> str:
        if self.decision is not None:
            return self.decision.outcome
        return self.preview.outcome if self.preview else gate.INCONCLUSIVE

    @property
    def evidence(self) -> dict:
        if self.decision is not None:
            return self.decision.evidence
        return self.preview.evidence() if self.preview else {}


def load(settings: Settings, config: gate.GateConfig) -> View:
    """Everything the page needs, read in one go."""
    with db.session_scope(settings.db_url) as session:
        latest = decisions.latest(session=session)
        state = rollout.state(session=session)
        served = gate_data.served_now(settings, session)
        view = View(
            decision=latest,
            preview=None,
            approval=decisions.approval(session=session),
            state=state,
            served=served,
            blockers=rollout.blockers(session=session, config=config, served_at_stage=served),
            next_stage=rollout.next_stage(config, state.stage),
            audit=decisions.audit(session=session),
            history=decisions.history(session=session, limit=200),
        )
    if latest is None:
        preview = gate.decide(config, gate_data.gather(settings, config, datetime.now(UTC)))
        view = View(**{**view.__dict__, "preview": preview})
    return view


def headline(view: View) -> tuple[str, str]:
    """(level, text) for the banner: level is success | error | warning."""
    ev = view.evidence
    level = {gate.GO: "success", gate.NO_GO: "error"}.get(view.outcome, "warning")
    where = (
        f"decision #{view.decision.id}, {view.decision.created_at:%Y-%m-%d %H:%M} UTC"
        if view.decision
        else "live preview, not recorded yet"
    )
    return level, f"{ev.get('summary') or gate.label(view.outcome)} ({where})"


def criteria_frame(evidence: dict) -> pd.DataFrame:
    """One row a criterion; what is missing comes right after the status."""

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"

    rows = [
        {
            "Category": c["category"],
            "Criterion": c["label"],
            "Status": c["status"],
            "What is missing": c["missing"] or "-",
            "Estimate": num(c["estimate"]),
            "Bound": num(c["bound"]),
            "Threshold": num(c["threshold"]),
            "n": c["n"],
            "Method": c["method"],
        }
        for c in evidence.get("criteria", [])
    ]
    return pd.DataFrame(rows)


def calibration_figure(cal: gate.Calibration, threshold: float | None) -> go.Figure:
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
                COLOURS[gate.GO] if (b.mean_score or 0) >= cal.target else "#90a4ae"
                for b in buckets
            ],
            name="mean review score",
            hovertemplate="similarity %{x:.2f}<br>mean score %{y:.2f}<extra></extra>",
        )
    )
    fig.add_hline(y=cal.target, line_dash="dot", annotation_text=f"score {cal.target:g}")
    if cal.suggested is not None:
        fig.add_vline(
            x=cal.suggested,
            line_color=COLOURS[gate.GO],
            annotation_text=f"suggested {cal.suggested:.2f}",
        )
    if threshold is not None:
        fig.add_vline(
            x=threshold,
            line_dash="dash",
            line_color="#455a64",
            annotation_text=f"config {threshold:.2f}",
            annotation_position="bottom right",
        )
    fig.update_layout(
        title=f"Mean review score by similarity ({cal.method}, {cal.reviewed:,} reviewed pairs)",
        xaxis_title="similarity",
        yaxis_title="mean student score",
        xaxis_range=[0, 1],
        yaxis_range=[0, 5.6],
        height=360,
        margin={"t": 50, "b": 40, "l": 40, "r": 20},
        showlegend=False,
    )
    return fig


def calibration_note(cal: gate.Calibration, current: float | None) -> str:
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
    settings: Settings, config: gate.GateConfig, days: int = 60, today: date | None = None
) -> list[gate_eval.ReplayPoint]:
    end = today or datetime.now(UTC).date()
    return gate_eval.replay(settings, config, end - timedelta(days=days - 1), end)


def replay_figure(points: list[gate_eval.ReplayPoint]) -> go.Figure:
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
                marker={"color": COLOURS[outcome], "size": 9},
                name=gate.label(outcome),
                customdata=part[["summary", "pairs", "reviews"]],
                hovertemplate="%{x}<br>%{customdata[0]}<br>pairs %{customdata[1]:,}, "
                "reviews %{customdata[2]:,}<extra></extra>",
            )
        )
    fig.update_layout(
        title="Readiness over time (the gate replayed at the end of each day)",
        yaxis={
            "tickvals": [0, 1, 2],
            "ticktext": [gate.label(o) for o in sorted(LEVEL, key=LEVEL.__getitem__)],
            "range": [-0.4, 2.4],
        },
        height=300,
        margin={"t": 50, "b": 30, "l": 40, "r": 20},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def audit_frame(rows: list[decisions.AuditRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "When (UTC)": as_utc(r.when).strftime("%Y-%m-%d %H:%M:%S"),
                "Who": r.who,
                "What": r.what,
                "Evidence / reason": r.detail,
                "Flag": "OVERRIDE" if r.what.startswith("override") else ("!" if r.flagged else ""),
            }
            for r in rows
        ]
    )

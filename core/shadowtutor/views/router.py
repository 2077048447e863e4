"""The per-request router on Readiness: its version and mode, the frontier per category (the
share of the category's traffic the student can take at each guaranteed floor, and the chosen
point), the thresholds, and the audit from reviews given after the version was trained.
Read-only.

The cascade (mode ``cascade``): per category the chosen router and validator thresholds with
the held-out share the student serves, the share its validator sends back to the teacher, and
the guaranteed floor; and from the log, what the validator did to live traffic: requests it
checked, the share it sent back, and what a sent-back request cost in time (the student's
answer the user waited for before the teacher's, and the validator's own milliseconds).

The audit rescores the pairs people reviewed after the version's training (their requests as
the review snapshot keeps them) with that version, and counts, per category, how many of them
the router would have sent to the student and how many of those people found acceptable, with
the same one-sided Clopper-Pearson lower bound as the threshold's guarantee. Pairs reviewed
later were sampled by whatever strategy queued them; a strategy that picks some pairs more
often than others weighs the audit the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from sqlmodel import Session

from shadowtutor.config import Settings
from shadowtutor.gate import evidence
from shadowtutor.gate.criteria import GateConfig
from shadowtutor.router import labels, model, store
from shadowtutor.router.threshold import CascadeChoice, Choice, lower_bound
from shadowtutor.tables import RouterModel, as_utc


@dataclass(frozen=True)
class AuditRow:
    category: str
    reviewed: int  # pairs reviewed after the version was trained
    routed: int  # of them, at or above the category's threshold
    acceptable: int  # of the routed ones, acceptable to people
    bound: float | None  # lower bound of the routed pairs' acceptable rate


@dataclass(frozen=True)
class RouterView:
    student: str
    mode: str
    active: RouterModel | None
    versions: list[RouterModel] = field(default_factory=list)
    choices: dict[str, Choice] = field(default_factory=dict)
    gated: dict[str, bool] = field(default_factory=dict)
    audit: list[AuditRow] = field(default_factory=list)
    cascades: dict[str, CascadeChoice] = field(default_factory=dict)


def load(session: Session, config: GateConfig, student: str) -> RouterView:
    current = store.state(session, student)
    rows = store.versions(session, student)
    active = current.active
    if active is None:
        return RouterView(student, current.mode, None, rows)
    raw = active.choices or {}
    choices = {c: Choice.from_dict(dict(d)) for c, d in sorted(raw.items())}
    gated = {c: bool(d.get("category_gate")) for c, d in raw.items()}
    audit = _audit(session, config, active, choices)
    cascades = {
        c: CascadeChoice.from_dict(c, dict(d["cascade"]))
        for c, d in sorted(raw.items())
        if isinstance(d.get("cascade"), dict)
    }
    return RouterView(student, current.mode, active, rows, choices, gated, audit, cascades)


def _audit(
    session: Session, config: GateConfig, active: RouterModel, choices: dict[str, Choice]
) -> list[AuditRow]:
    since = as_utc(active.created_at)
    later = [
        lab
        for lab in labels.human_labels(session, student=active.student, bar=config.min_review_score)
        if lab.at is not None and lab.at > since
    ]
    if not later:
        return []
    scorer = model.loads(active.model)
    scores = model.sklearn_scores(scorer, [lab.text for lab in later])
    out = []
    for cat in sorted({lab.category for lab in later}):
        limit = choices[cat].threshold if cat in choices else None
        mine = [(s, lab) for s, lab in zip(scores, later, strict=True) if lab.category == cat]
        routed = [lab for s, lab in mine if limit is not None and s >= limit]
        ok = sum(lab.acceptable for lab in routed)
        bound = lower_bound(ok, len(routed), active.alpha) if routed else None
        out.append(AuditRow(cat, len(mine), len(routed), ok, bound))
    return out


def summary(view: RouterView) -> str:
    a = view.active
    if a is None:
        return (
            f"No router for {view.student} yet: shadowtutor router train --student {view.student}"
        )
    when = f"{as_utc(a.created_at):%Y-%m-%d %H:%M} UTC"
    return (
        f"Router version {a.version} of {view.student} (trained {when}), mode {view.mode}: "
        f"floor {a.floor:.0%} guaranteed with confidence {1 - a.alpha:.2%} per category "
        f"(alpha {a.alpha:.3%}, the gate's per-claim share of its error budget)."
    )


def thresholds_frame(view: RouterView) -> pd.DataFrame:
    rows = []
    for cat, c in view.choices.items():
        rows.append(
            {
                "Category": cat,
                "Threshold": "none certified" if c.threshold is None else f"{c.threshold:.3f}",
                "Student takes": f"{c.share:.1%}",
                "Held-out reviews": c.held_out,
                "Category gating at this floor": "serves all" if view.gated.get(cat) else "none",
            }
        )
    return pd.DataFrame(rows)


def cascade_frame(view: RouterView) -> pd.DataFrame:
    """Per category the cascade's chosen point (held-out shares and the guaranteed floor)."""
    rows = []
    for cat, c in view.cascades.items():
        p = c.chosen
        routed = view.choices.get(cat)
        rows.append(
            {
                "Category": cat,
                "Router tries at": "-" if p is None else f"{p.router:.3f}",
                "Validator serves at": "-" if p is None else f"{p.validator:.3f}",
                "Student serves": "none certified" if p is None else f"{p.share:.1%}",
                "Sent back to the teacher": "-" if p is None else f"{p.sent_back:.1%}",
                "Guaranteed floor": "-" if p is None else f"{p.bound:.1%}",
                "Routed alone serves": "-" if routed is None else f"{routed.share:.1%}",
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class CascadeTraffic:
    """What the validator did to live traffic (the log's records of the student)."""

    checked: int  # answers the validator scored (or could not: sent back too)
    sent_back: int  # of them, answered by the teacher instead
    wait_ms: float | None  # median student latency of the sent-back ones: the added wait
    wait_p90_ms: float | None
    validator_ms: float | None  # median time of the validator's check

    def sentence(self) -> str:
        if not self.checked:
            return "The validator has checked no live answer yet (mode cascade, after a GO)."
        share = self.sent_back / self.checked
        wait = "-" if self.wait_ms is None else f"{self.wait_ms:,.0f} ms"
        p90 = "-" if self.wait_p90_ms is None else f"{self.wait_p90_ms:,.0f} ms"
        check = "-" if self.validator_ms is None else f"{self.validator_ms:.2f} ms"
        return (
            f"Live: the validator checked {self.checked:,} student answers and sent "
            f"{self.sent_back:,} back to the teacher ({share:.1%}). A sent-back request waited "
            f"for the student's answer first: median {wait} (p90 {p90}) before the teacher's; "
            f"the check itself took a median {check}."
        )


_CASCADE_SQL = """
SELECT count(*) AS checked,
  count(*) FILTER (WHERE served_by = 'teacher') AS sent_back,
  median(student_latency_ms) FILTER (WHERE served_by = 'teacher') AS wait_ms,
  quantile_cont(student_latency_ms, 0.9) FILTER (WHERE served_by = 'teacher') AS wait_p90_ms,
  median(TRY_CAST(json_extract_string(metadata, '$.validator_ms') AS DOUBLE)) AS validator_ms
FROM pairs
WHERE validator_threshold IS NOT NULL
"""


def cascade_traffic(settings: Settings, student: str) -> CascadeTraffic:
    """The validator's live record of ``student`` (DuckDB over the log: the gate's ``pairs``
    of that student)."""
    con = evidence.connect(settings.log_path, student)
    try:
        row = con.execute(_CASCADE_SQL).fetchone()
    finally:
        con.close()
    assert row is not None
    checked, back, wait, p90, check = row
    return CascadeTraffic(int(checked), int(back), wait, p90, check)


def audit_frame(view: RouterView) -> pd.DataFrame:
    rows = [
        {
            "Category": r.category,
            "Reviewed since training": r.reviewed,
            "Router would route": r.routed,
            "Acceptable": r.acceptable,
            "Acceptable rate": "-" if not r.routed else f"{r.acceptable / r.routed:.1%}",
            "Lower bound": "-" if r.bound is None else f"{r.bound:.1%}",
        }
        for r in view.audit
    ]
    return pd.DataFrame(rows)


def versions_frame(view: RouterView) -> pd.DataFrame:
    active = view.active.version if view.active else None
    rows: list[dict[str, Any]] = []
    for r in view.versions:
        counts = r.counts or {}
        rows.append(
            {
                "Version": r.version,
                "Active": "yes" if r.version == active else "",
                "Trained (UTC)": _when(r.created_at),
                "Floor": f"{r.floor:.0%}",
                "Reviews (learn / held out)": (
                    f"{counts.get('human_train', 0)} / {counts.get('human_held_out', 0)}"
                ),
                "Judge pairs": counts.get("judge_train", 0),
                "Users' feedback pairs": counts.get("feedback_train", 0),
                "Held-out AUC": "-" if "auc" not in r.metrics else f"{r.metrics['auc']:.3f}",
            }
        )
    return pd.DataFrame(rows)


def _when(ts: datetime | None) -> str:
    return "-" if ts is None else f"{as_utc(ts):%Y-%m-%d %H:%M}"


def frontier_figure(view: RouterView) -> go.Figure:
    """Per category: the guaranteed floor (y) at each share of its traffic the student takes
    (x); the chosen point marked; the floor as a dashed line."""
    fig = go.Figure()
    palette = qualitative.Plotly
    for i, (cat, c) in enumerate(view.choices.items()):
        colour = palette[i % len(palette)]
        points = sorted(c.points, key=lambda p: p.share)
        fig.add_trace(
            go.Scatter(
                x=[p.share for p in points],
                y=[p.guaranteed for p in points],
                mode="lines+markers",
                name=cat,
                line={"color": colour},
                hovertemplate="takes %{x:.0%} of " + cat + ": floor %{y:.1%}<extra></extra>",
            )
        )
        if c.chosen is not None:
            fig.add_trace(
                go.Scatter(
                    x=[c.chosen.share],
                    y=[c.chosen.guaranteed],
                    mode="markers",
                    marker={"size": 16, "symbol": "star", "color": colour},
                    name=f"{cat}: chosen",
                    showlegend=False,
                    hovertemplate=f"{cat} chosen threshold {c.chosen.threshold:.3f}<extra></extra>",
                )
            )
    if view.active is not None:
        fig.add_hline(
            y=view.active.floor,
            line_dash="dash",
            annotation_text=f"floor {view.active.floor:.0%}",
        )
    fig.update_layout(
        title="Frontier: traffic taken vs guaranteed floor",
        xaxis={
            "title": "share of the category's traffic served by the student",
            "tickformat": ".0%",
        },
        yaxis={"title": "guaranteed acceptable rate (95 % family)", "tickformat": ".0%"},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        height=380,
    )
    return fig

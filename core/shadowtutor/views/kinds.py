"""Traffic by kind of request (plain, tools, json_object, json_schema, images): the Quality
page's table and chart of how the student does on each kind, and the Readiness page's
decision and criteria per category and kind. Read-only view-models over ``facts`` (the
Quality page's filters apply) and over a decision's stored evidence.

A kind's figures are what the gate counts: a student whose server refused the request's
feature (``unsupported: ...``) is counted apart, not as a failure; tool calls agree when both
answers call the same functions with JSON-equal arguments; a JSON answer is valid when it
parses and fits the request's schema.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go

from shadowtutor.gate import criteria, rollout
from shadowtutor.gate.outcomes import FAIL, INCONCLUSIVE, PASS
from shadowtutor.log.analytics import WHERE, Filters, query
from shadowtutor.views import criteria_table

KINDS = criteria.KINDS
# What each kind's requests carry, in the tables' words.
WHAT = {
    "plain": "chat, answered in text",
    "tools": "tool definitions: the answer may call a function",
    "json_object": "JSON mode",
    "json_schema": "a JSON schema the answer must fit",
    "images": "image parts in the messages",
}
# Segments of the chart, in stacking order, with their colours.
SEGMENTS = {
    "agrees": ("agrees in full / valid JSON", "#2e7d32"),
    "differs": ("differs / invalid JSON", "#f9a825"),
    "text": ("answered in text", "#4C78A8"),
    "failed": ("failed (error, timeout)", "#c62828"),
    "unsupported": ("unsupported by the student's server", "#90a4ae"),
}


def quality_by_kind(
    con: duckdb.DuckDBPyConnection, f: Filters, method: str | None = None
) -> pd.DataFrame:
    """One row a kind of request in the selection: requests, the student's outcomes
    (answered, failed, unsupported apart), its tool-call agreement, JSON validity, mean
    similarity of text answers (``method``'s scores only) and P95 latency."""
    df = query(
        con,
        f"""
        SELECT request_kind AS kind, count(*) AS requests,
          count(*) FILTER (WHERE student_outcome = 'ok') AS answered,
          count(*) FILTER (WHERE student_outcome IN ('error', 'timeout')) AS failed,
          count(*) FILTER (WHERE student_outcome = 'unsupported') AS unsupported,
          count(*) FILTER (WHERE student_outcome = 'ok' AND agreement_kind = 'tool_calls')
            AS tool_pairs,
          count(*) FILTER (WHERE student_outcome = 'ok' AND agreement_kind = 'tool_calls'
                           AND agreement_score >= 0.999999) AS tools_agreed,
          avg(agreement_score) FILTER (WHERE student_outcome = 'ok'
                                       AND agreement_kind = 'tool_calls') AS tool_score,
          count(*) FILTER (WHERE student_outcome = 'ok' AND agreement_kind = 'json')
            AS json_answers,
          count(*) FILTER (WHERE student_outcome = 'ok' AND agreement_kind = 'json'
                           AND coalesce(agreement_valid, false)) AS json_valid,
          avg(similarity) FILTER (WHERE student_outcome = 'ok' AND similarity_method = $method)
            AS mean_similarity,
          quantile_cont(student_latency_ms, 0.95) FILTER (WHERE student_outcome = 'ok')
            AS p95_ms
        FROM facts WHERE {WHERE} GROUP BY 1
        """,
        f,
        method=method or "",
    )
    if df.empty:
        return df
    order = {k: i for i, k in enumerate(KINDS)}
    df = df.sort_values("kind", key=lambda s: s.map(lambda k: order.get(k, len(order))))
    asked = df["answered"] + df["failed"]
    df["failure_rate"] = (df["failed"] / asked).where(asked > 0)
    df["tool_agreement"] = (df["tools_agreed"] / df["tool_pairs"]).where(df["tool_pairs"] > 0)
    df["json_validity"] = (df["json_valid"] / df["json_answers"]).where(df["json_answers"] > 0)
    return df.reset_index(drop=True)


COLUMN_HELP = {
    "Answered": "the student answered without an error or a timeout",
    "Failed": "errors and timeouts (unsupported requests are not counted here)",
    "Failure rate": "failed of those the student's server took",
    "Unsupported": "the student's server refused the request's feature (tools, a schema, images): "
    "counted apart, not as failures",
    "Calls agree": "pairs compared by tool calls whose calls agree in full: the same functions "
    "with JSON-equal arguments",
    "Call score": "mean graded tool-call score: name, required arguments, all arguments",
    "Valid JSON": "answers that parse as JSON and fit the request's schema",
    "Similarity": "mean similarity of text answers (the method chosen above)",
    "P95 ms": "the student's P95 latency of answered requests",
}


def quality_table(df: pd.DataFrame) -> pd.DataFrame:
    """The page's table of :func:`quality_by_kind`: numbers as text, a dash for none
    (what each column means: :data:`COLUMN_HELP`)."""

    def share(value: Any) -> str:
        return "-" if pd.isna(value) else f"{value:.1%}"

    def number(value: Any, fmt: str = "{:,.0f}") -> str:
        return "-" if pd.isna(value) else fmt.format(value)

    return pd.DataFrame(
        {
            "Kind": df["kind"],
            "Requests": df["requests"].map("{:,}".format),
            "Answered": df["answered"].map("{:,}".format),
            "Failed": df["failed"].map("{:,}".format),
            "Failure rate": df["failure_rate"].map(share),
            "Unsupported": df["unsupported"].map("{:,}".format),
            "Calls agree": df["tool_agreement"].map(share),
            "Call score": df["tool_score"].map(lambda v: number(v, "{:.3f}")),
            "Valid JSON": df["json_validity"].map(share),
            "Similarity": df["mean_similarity"].map(lambda v: number(v, "{:.3f}")),
            "P95 ms": df["p95_ms"].map(number),
        }
    )


def outcome_counts(df: pd.DataFrame) -> pd.DataFrame:
    """kind, segment, pairs, share: the student's outcomes per kind, as :data:`SEGMENTS`,
    and each one's share of its kind's pairs."""
    rows = []
    for raw in df.to_dict("records"):
        r: dict[str, Any] = {str(k): v for k, v in raw.items()}
        checked = int(r["tool_pairs"]) + int(r["json_answers"])
        agrees = int(r["tools_agreed"]) + int(r["json_valid"])
        counts = {
            "agrees": agrees,
            "differs": checked - agrees,
            "text": int(r["answered"]) - checked,
            "failed": int(r["failed"]),
            "unsupported": int(r["unsupported"]),
        }
        total = max(1, sum(counts.values()))
        rows += [
            {"kind": r["kind"], "segment": k, "pairs": v, "share": v / total}
            for k, v in counts.items()
        ]
    return pd.DataFrame(rows, columns=["kind", "segment", "pairs", "share"])


def outcome_figure(counts: pd.DataFrame) -> go.Figure:
    """The student's outcomes per kind of request, as shares of the kind's pairs (stacked to
    100 %: a small kind reads as well as plain chat), the counts on hover."""
    fig = go.Figure()
    for key, (name, colour) in SEGMENTS.items():
        part = counts[counts["segment"] == key]
        if part["pairs"].sum() == 0:
            continue
        fig.add_bar(
            x=part["kind"],
            y=part["share"],
            customdata=part["pairs"],
            name=name,
            marker_color=colour,
            hovertemplate="%{x}: %{customdata:,} pairs (%{y:.1%})<extra>" + name + "</extra>",
        )
    fig.update_layout(
        barmode="stack",
        title="The student's answers by kind of request",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=340,
        yaxis={"title": "share of the kind's pairs", "tickformat": ".0%"},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


# --- readiness --------------------------------------------------------------------------------


def _serves(state: rollout.RolloutState, category: str, kind: str) -> str:
    """Whether the rollout lets the student serve (category, kind) now, in words."""
    released = category in state.categories if kind == "plain" else (
        kind in state.kinds.get(category, ())
    )  # fmt: skip
    if not released:
        return "no: the teacher answers"
    if state.killed:
        return "no: the kill switch is on"
    return f"yes, at {state.stage}%" if state.stage > 0 else "released, at 0%"


def decision_frame(evidence: dict[str, Any], state: rollout.RolloutState) -> pd.DataFrame:
    """One row a (category, kind) of a decision's evidence: its status (each kind has its own
    GO), whether it is released, and whether the rollout lets the student serve it now."""
    statuses = evidence.get("category_status") or {}
    by_kind = evidence.get("kind_status") or {}
    eligible = set(evidence.get("eligible") or [])
    eligible_kinds = {c: set(k) for c, k in (evidence.get("eligible_kinds") or {}).items()}
    rows = []
    for cat, status in statuses.items():
        cells = [("plain", status, cat in eligible)]
        released = eligible_kinds.get(cat, set())
        cells += [(k, s, k in released) for k, s in by_kind.get(cat, {}).items()]
        for kind, st, go_ in cells:
            rows.append(
                {
                    "Category": cat,
                    "Kind": kind,
                    "What it asks": WHAT.get(kind, kind),
                    "Status": st,
                    "Decision": criteria.LABELS[criteria.GO] if go_ else _no_go(st),
                    "Student serves it": _serves(state, cat, kind),
                }
            )
    return pd.DataFrame(rows)


def _no_go(status: str) -> str:
    """The decision of a cell that is not released, by its status (a PASS not released: the
    gate's critical errors block every cell)."""
    if status == FAIL:
        return criteria.LABELS[criteria.NO_GO]
    if status == INCONCLUSIVE:
        return criteria.LABELS[INCONCLUSIVE]
    return "blocked by critical errors" if status == PASS else status


def criteria_frame(evidence: dict[str, Any]) -> pd.DataFrame:
    """The criteria of the kinds other than plain (the main table holds plain's), one row
    each, every column short (:func:`shadowtutor.views.criteria_table.frame`); what is missing is
    :func:`criteria_notes`."""
    return criteria_table.frame(other(evidence), kind_column=True)


def criteria_notes(evidence: dict[str, Any]) -> list[str]:
    return criteria_table.missing_lines(other(evidence))


def other(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in evidence.get("criteria", []) if c.get("kind", "plain") != "plain"]

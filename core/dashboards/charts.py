"""Plotly figures built from the query DataFrames of :mod:`.spend` and :mod:`.quality`.

Each function takes the DataFrame its query returns and gives back a figure; pages check
for an empty frame first (and say why there is nothing to draw) before calling these.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
TEACHER, STUDENT = "#4C78A8", "#F58518"
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 340}


def _style(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def spend_trend(df: pd.DataFrame, x: str = "day") -> go.Figure:
    """Teacher spend per day (``x="day"``) or per hour (``x="hour"``)."""
    fig = px.bar(df, x=x, y="teacher_usd", labels={"teacher_usd": "USD", x: ""})
    fig.update_traces(marker_color=TEACHER, hovertemplate="%{x}<br>$%{y:,.2f}<extra></extra>")
    return _style(fig, f"Teacher spend per {x}")


def spend_heatmap(df: pd.DataFrame) -> go.Figure:
    """Spend by hour of day (columns) and weekday (rows)."""
    grid = (
        df.pivot_table(index="weekday", columns="hour", values="teacher_usd", aggfunc="sum")
        .reindex(index=range(1, 8), columns=range(24))
        .fillna(0)
    )
    fig = go.Figure(
        go.Heatmap(
            z=grid.values,
            x=[f"{h:02d}" for h in grid.columns],
            y=WEEKDAYS,
            colorscale="Blues",
            hovertemplate="%{y} %{x}:00<br>$%{z:,.2f}<extra></extra>",
            colorbar={"title": "USD"},
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _style(fig, "Teacher spend by weekday and hour")


def spend_breakdown(df: pd.DataFrame, dimension: str) -> go.Figure:
    fig = px.bar(
        df.head(15).iloc[::-1],
        x="teacher_usd",
        y="value",
        orientation="h",
        labels={"teacher_usd": "USD", "value": ""},
    )
    fig.update_traces(marker_color=TEACHER, hovertemplate="%{y}<br>$%{x:,.2f}<extra></extra>")
    fig.update_yaxes(type="category")
    return _style(fig, f"Spend by {dimension}")


def similarity_histogram(df: pd.DataFrame, method: str, threshold: float) -> go.Figure:
    centers = (df["bin_start"] + df["bin_end"]) / 2
    colors = [STUDENT if c >= threshold else "#BBBBBB" for c in centers]
    fig = go.Figure(
        go.Bar(
            x=centers,
            y=df["pairs"],
            width=df["bin_end"] - df["bin_start"],
            marker_color=colors,
            hovertemplate="%{x:.2f}<br>%{y:,} pairs<extra></extra>",
        )
    )
    fig.add_vline(x=threshold, line_dash="dash", annotation_text=f"threshold {threshold:.2f}")
    fig.update_xaxes(title=f"similarity ({method})", range=[0, 1])
    fig.update_yaxes(title="pairs")
    return _style(fig, "Similarity distribution")


def similarity_trend(df: pd.DataFrame, threshold: float) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=df["day"], y=df["mean"], name="mean", line_color=STUDENT)
    fig.add_scatter(x=df["day"], y=df["p10"], name="10th percentile", line_dash="dot")
    fig.add_scatter(
        x=df["day"], y=df["share_above"], name=f"share ≥ {threshold:.2f}", line_color=TEACHER
    )
    fig.update_yaxes(range=[0, 1])
    return _style(fig, "Similarity per day")


def similarity_breakdown(df: pd.DataFrame, dimension: str) -> go.Figure:
    fig = px.bar(
        df.head(15),
        x="value",
        y="mean",
        hover_data={"pairs": True, "share_above": ":.1%"},
        labels={"value": "", "mean": "mean similarity"},
    )
    fig.update_traces(marker_color=STUDENT)
    fig.update_xaxes(type="category")
    fig.update_yaxes(range=[0, 1])
    return _style(fig, f"Similarity by {dimension}")


def latency_trend(df: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for who, color in (("teacher", TEACHER), ("student", STUDENT)):
        part = df[df["who"] == who]
        for pct, dash in (("p50", "solid"), ("p95", "dash"), ("p99", "dot")):
            fig.add_scatter(
                x=part["day"],
                y=part[pct],
                name=f"{who} {pct.upper()}",
                line={"color": color, "dash": dash},
            )
    fig.update_yaxes(title="ms")
    return _style(fig, "Latency percentiles per day (successful calls)")


def failure_trend(df: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    fig.add_bar(x=df["day"], y=df["error_rate"], name="errors", marker_color="#E45756")
    fig.add_bar(x=df["day"], y=df["timeout_rate"], name="timeouts", marker_color="#EECA3B")
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="share of student calls", tickformat=".0%")
    return _style(fig, "Student errors and timeouts per day")

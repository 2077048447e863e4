"""Plotly figures built from the query DataFrames of :mod:`.spend` and :mod:`.quality`.

Each function takes the DataFrame its query returns and gives back a figure; pages check
for an empty frame first (and say why there is nothing to draw) before calling these.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
TEACHER, STUDENT = "#4C78A8", "#F58518"
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 340}


def _style(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def spend_trend(df: pd.DataFrame, x: str = "day", tz: str = "UTC") -> go.Figure:
    """Teacher spend per day (``x="day"``) or per hour (``x="hour"``)."""
    fig = px.bar(df, x=x, y="teacher_usd", labels={"teacher_usd": "USD", x: ""})
    fig.update_traces(marker_color=TEACHER, hovertemplate="%{x}<br>$%{y:,.2f}<extra></extra>")
    if x == "hour" and len(df) and pd.to_datetime(df[x]).dt.date.nunique() == 1:
        # one day: hours on the axis and the day in its title, not "00:00:00 Dec 1, 2026"
        day = pd.to_datetime(df[x]).iloc[0]
        fig.update_xaxes(tickformat="%H:%M", title=f"{day:%a %d %b %Y} ({tz})")
    else:
        fig.update_xaxes(title=f"{x} ({tz})")
    return _style(fig, f"Teacher spend per {x}")


def spend_heatmap(df: pd.DataFrame, tz: str = "UTC") -> go.Figure:
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
    fig.update_xaxes(title=f"Hour of day ({tz})")
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
    fig.add_vline(x=threshold, line_dash="dash")
    # The label above the plot, leaning away from the tallest bars (near 1) so none covers it.
    fig.add_annotation(
        x=threshold, xref="x", y=1, yref="paper", yanchor="bottom", showarrow=False,
        text=f"threshold {threshold:.2f}", xanchor="right" if threshold > 0.5 else "left",
        font={"size": 11},
    )  # fmt: skip
    fig.update_xaxes(title=f"similarity ({method})", range=[0, 1])
    fig.update_yaxes(title="pairs")
    fig = _style(fig, "Similarity distribution")
    fig.update_layout(margin={**fig.layout.margin.to_plotly_json(), "t": 70})
    return fig


def similarity_trend(
    df: pd.DataFrame, threshold: float, partial_day: date | None = None
) -> go.Figure:
    """Mean and 10th percentile similarity (left axis) and the share of pairs at or above
    ``threshold`` (right axis, in %) per day. ``partial_day`` (today, still filling) is shown
    as markers of its own, not joined to the lines: its few pairs so far are no dip."""
    is_partial = pd.to_datetime(df["day"]).dt.date == partial_day
    whole, today = df[~is_partial], df[is_partial]
    share = f"share ≥ {threshold:.2f}"
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    series = (("mean", "mean", STUDENT, "solid"), ("p10", "10th percentile", STUDENT, "dot"))
    for column, name, color, dash in series:
        fig.add_scatter(x=whole["day"], y=whole[column], name=name,
                        line={"color": color, "dash": dash}, mode="lines")  # fmt: skip
    fig.add_scatter(x=whole["day"], y=whole["share_above"], name=share,
                    line={"color": TEACHER}, mode="lines", secondary_y=True)  # fmt: skip
    if len(today):
        fig.add_scatter(
            x=today["day"], y=today["mean"], mode="markers", name="today so far (mean)",
            marker={"color": STUDENT, "symbol": "circle-open", "size": 9},
            hovertext=[f"{int(n):,} pairs so far" for n in today["pairs"]],
        )  # fmt: skip
    fig.update_yaxes(range=[0, 1], title="similarity", secondary_y=False)
    fig.update_yaxes(range=[0, 1], title=f"share of pairs ≥ {threshold:.2f}", tickformat=".0%",
                     secondary_y=True)  # fmt: skip
    _style(fig, "Similarity per day")
    # below the plot: at the right it covered the share axis and its title
    fig.update_layout(legend={"orientation": "h", "x": 0, "y": -0.12, "yanchor": "top"})
    return fig


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


# --- review progress ------------------------------------------------------------------------


def reviews_per_day(df: pd.DataFrame, tz: str = "UTC") -> go.Figure:
    """Reviews per day, stacked by reviewer (columns: day, reviewer, reviews)."""
    fig = px.bar(
        df, x="day", y="reviews", color="reviewer", labels={"reviews": "reviews", "day": ""}
    )
    fig.update_traces(
        hovertemplate="%{x|%Y-%m-%d}<br>%{y:,} reviews<extra>%{fullData.name}</extra>"
    )
    fig.update_xaxes(title=f"Day ({tz})", tickformat="%d %b")
    fig.update_layout(legend_title_text="Reviewer")
    return _style(fig, "Reviews per reviewer per day")


def agreement_over_time(df: pd.DataFrame, tz: str = "UTC") -> go.Figure:
    """Share of multiply-reviewed items whose reviewers agreed, per day (columns: day,
    items, agreed, share)."""
    fig = go.Figure(
        go.Scatter(
            x=df["day"],
            y=df["share"],
            mode="lines+markers",
            customdata=df[["agreed", "items"]].values,
            hovertemplate="%{x|%Y-%m-%d}<br>%{y:.0%} agree"
            "<br>%{customdata[0]:,} of %{customdata[1]:,} items<extra></extra>",
            line={"color": TEACHER},
        )
    )
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", title="agree on approve/reject")
    fig.update_xaxes(title=f"Day of the later review ({tz})", tickformat="%d %b")
    return _style(fig, "Raw agreement over time")

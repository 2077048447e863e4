"""Home: where the shadow run stands, for every role, and where to go next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from shadowtutor.app import auth, deps, filters, guard
from shadowtutor.app.registry import pages_for
from shadowtutor.app.text import md
from shadowtutor.cost import spend
from shadowtutor.log import analytics
from shadowtutor.views import charts, overview

GO_TO_PER_ROW = 4
user = auth.guard("home")
settings = deps.settings()

st.title("ShadowTutor")
st.caption(
    f"The teacher answers every user; the student shadows it. Signed in as "
    f"{md(user.display_name)} ({user.role}). Times in {settings.timezone}."
)

now = datetime.now(UTC)
con = filters.connect_or_stop(settings)
figures = analytics.headline(con, now)
state = overview.overview(settings.db_url)

if figures.pairs_7d == 0 and figures.teacher_spend_mtd is None:
    st.info(
        "The shadow log is empty. Wrap your OpenAI client or run `shadowtutor proxy` to "
        "collect pairs, import a file with `shadowtutor logs import FILE`, or generate demo "
        "data with `shadowtutor demo`."
    )

c1, c2, c3, c4 = st.columns(4)
c1.metric("Pairs, last 7 days", f"{figures.pairs_7d:,}")
c2.metric(
    "Teacher spend this month",
    "n/a" if figures.teacher_spend_mtd is None else f"${figures.teacher_spend_mtd:,.2f}",
)
c3.metric(
    "Mean similarity, 7 days",
    "n/a" if figures.mean_similarity_7d is None else f"{figures.mean_similarity_7d:.3f}",
    help=f"Method: {md(figures.similarity_method or 'none')}",
)
c4.metric(
    "Student P95 latency, 7 days",
    "n/a" if figures.student_p95_ms_7d is None else f"{figures.student_p95_ms_7d:,.0f} ms",
)
c5, c6, c7, c8 = st.columns(4)
c5.metric(  # a short label: the long one was cut to "Student errors and timeo…" at 1,024 px
    "Student failures, 7 days",
    "n/a" if figures.student_error_rate_7d is None else f"{figures.student_error_rate_7d:.1%}",
    help="Share of the student's answers that were errors or timeouts",
)
c6.metric("Reviews done", f"{state.reviews_done:,}")
c7.metric(
    "Deploy gate",
    state.decision_label,
    help=f"Newest decision: {state.decided_at:%Y-%m-%d %H:%M} UTC" if state.decided_at else None,
)
c8.metric("Student serves", "kill switch on" if state.killed else f"{state.stage}% of eligible")

last_30 = analytics.Filters(start=(now - timedelta(days=29)).date(), end=now.date())
daily = spend.spend_by_day(con, last_30)
if not daily.empty:
    filters.plot(charts.spend_trend, daily)

guard.render(settings, compact=True)

st.subheader("Go to")
links = [p for p in pages_for(user.role) if p.key != "home"]
# Rows of at most four: eight links in one row cut "Quality & latency" to "Quality & la" at
# 1440 px (issue 14 item 10).
for row in range(0, len(links), GO_TO_PER_ROW):
    columns = st.columns(GO_TO_PER_ROW)
    for column, spec in zip(columns, links[row : row + GO_TO_PER_ROW], strict=False):
        column.page_link(str(spec.path), label=spec.title, icon=spec.icon)

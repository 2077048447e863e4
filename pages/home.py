"""Home: the headline figures of the shadow run, for every role."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from app import auth, deps
from core import analytics, review_stats

user = auth.guard("home")
settings = deps.settings()

st.title("ShadowTutor")
st.caption(
    f"Teacher answers every user; the student shadows it. Log: `{settings.log_path}` · "
    f"signed in as {user.display_name} ({user.role})"
)

now = datetime.now(UTC)
figures = analytics.headline(analytics.connect(settings.log_path), now)
reviews = review_stats.reviews_done(settings.db_url)

if figures.pairs_7d == 0 and figures.teacher_spend_mtd is None:
    st.info(
        "The shadow log is empty. Wrap your OpenAI client or run the proxy to collect pairs, "
        "import a file with `shadowtutor logs import FILE`, or generate demo data with "
        "`shadowtutor demo`."
    )

c1, c2, c3, c4, c5 = st.columns(5)
c1.metric("Pairs, last 7 days", f"{figures.pairs_7d:,}")
c2.metric(
    "Teacher spend, month to date",
    "n/a" if figures.teacher_spend_mtd is None else f"${figures.teacher_spend_mtd:,.2f}",
)
c3.metric(
    "Mean similarity, 7 days",
    "n/a" if figures.mean_similarity_7d is None else f"{figures.mean_similarity_7d:.3f}",
    help=f"Method: {figures.similarity_method or 'none'}",
)
c4.metric(
    "Student P95 latency, 7 days",
    "n/a" if figures.student_p95_ms_7d is None else f"{figures.student_p95_ms_7d:,.0f} ms",
)
c5.metric("Reviews done", f"{reviews:,}")

if figures.student_error_rate_7d is not None:
    st.caption(f"Student errors and timeouts, last 7 days: {figures.student_error_rate_7d:.1%}")

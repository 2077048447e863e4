"""Quality & latency: similarity, latency percentiles, student failures, teacher vs student."""

from __future__ import annotations

import streamlit as st

from shadowtutor import db
from shadowtutor.app import auth, deps, feedback, filters, kinds
from shadowtutor.app.text import md
from shadowtutor.log import analytics
from shadowtutor.views import charts, display, quality

user = auth.guard("quality")
settings = deps.settings()
st.title("Quality & latency")
con = filters.connect_or_stop(settings)
f = filters.selection(con, "quality", settings.timezone)

st.subheader("Similarity")
methods = quality.similarity_methods(con, f)
method = None
if methods.empty:
    st.info(
        "No pair in this selection has a similarity score yet (the student has not "
        "answered, or similarity is switched off)."
    )
else:
    c = st.columns([1, 2])
    method = c[0].selectbox(
        "Method",
        methods["method"].tolist(),
        key="quality-method",
        help="Scores of different methods are never mixed in one chart.",
    )
    threshold = c[1].slider("Threshold", 0.0, 1.0, 0.8, 0.05, key="quality-threshold")
    by_day = quality.similarity_by_day(con, f, method, threshold)
    share = (by_day["share_above"] * by_day["pairs"]).sum() / by_day["pairs"].sum()
    st.metric(
        f"Pairs with similarity ≥ {threshold:.2f}",
        f"{share:.1%}",
        help=f"{int(by_day['pairs'].sum()):,} scored pairs, method {md(method)}",
    )
    c = st.columns(2)
    with c[0]:
        filters.chart(
            quality.similarity_histogram(con, f, method),
            charts.similarity_histogram,
            method,
            threshold,
            name="similarity_histogram",
            empty="No similarity scores.",
        )
    with c[1]:
        if len(by_day) == 1:
            st.info("All scored pairs are from a single day; a trend needs more days.")
            filters.download(by_day, "similarity_by_day")
        else:
            filters.chart(
                by_day,
                charts.similarity_trend,
                threshold,
                filters.local_now(settings.timezone).date(),
                name="similarity_by_day",
                empty="No similarity scores.",
            )
    c = st.columns(2)
    for i, dim in enumerate(quality.SIM_DIMENSIONS):
        with c[i]:
            filters.chart(
                quality.similarity_by(con, f, method, dim, threshold),
                charts.similarity_breakdown,
                dim,
                name=f"similarity_by_{dim}",
                empty=f"No similarity by {dim}.",
            )

st.subheader("Latency and failures")
c = st.columns(2)
with c[0]:
    filters.chart(
        quality.latency_by_day(con, f),
        charts.latency_trend,
        name="latency_by_day",
        empty="No successful calls with a latency in this selection.",
    )
with c[1]:
    filters.chart(
        quality.student_failures_by_day(con, f),
        charts.failure_trend,
        name="student_failures_by_day",
        empty="The student has not been called in this selection.",
    )

st.subheader("Teacher vs student")
start, end = analytics.utc_bounds(f, settings.timezone)
with db.session_scope(settings.db_url) as session:
    scores = quality.review_scores(
        session=session, start=start, end=end, categories=f.categories, languages=f.languages
    )
table = quality.side_by_side(
    con, f, method=method, scores=scores, flat_monthly_usd=settings.student_monthly_cost_usd
)
shown = display.formatted(
    table,
    {
        "requests": "{:,}",
        "cost_per_1k_usd": "${:,.2f}",
        "p50_ms": "{:,.0f}",
        "p95_ms": "{:,.0f}",
        "error_rate": "{:.2%}",
        "mean_similarity": "{:.3f}",
        "mean_review_score": "{:.2f}",
    },
)
# The teacher is what the similarity is measured against; a dash elsewhere: no data here.
shown.loc[shown["model"] == "teacher", "mean_similarity"] = "reference"
text = st.column_config.TextColumn
st.dataframe(
    shown,
    hide_index=True,
    column_config={
        "cost_per_1k_usd": text("USD per 1,000 requests"),
        "p50_ms": text("P50 ms"),
        "p95_ms": text("P95 ms"),
        "error_rate": text("error rate"),
        "mean_similarity": text(f"similarity to the teacher ({method or 'n/a'})"),
        "mean_review_score": text("mean review score (1-5)"),
    },
)
filters.download(table, "teacher_vs_student")
st.caption(
    f"Review scores: {scores.reviews:,} current reviews of pairs in this period, category and "
    "language (model and source filters do not apply to reviews). The student's cost includes "
    f"its flat ${settings.student_monthly_cost_usd:,.2f}/month spread over the period's days."
)

kinds.quality_section(con, f, method)
feedback.quality_section(con, f, settings.timezone, str(settings.log_path))

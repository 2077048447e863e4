"""Review progress and agreement between reviewers (read-only, every role)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from shadowtutor import db
from shadowtutor.app import auth, deps, filters
from shadowtutor.app.text import inert
from shadowtutor.judge import scores
from shadowtutor.log import analytics
from shadowtutor.log.errors import TimezoneError
from shadowtutor.review import agreement, progress
from shadowtutor.views import charts, display

user = auth.guard("review-progress")
settings = deps.settings()

st.title("Review progress")
try:
    tz = analytics.zone(settings.timezone)
except TimezoneError as exc:
    st.error(inert(exc))
    st.stop()
day_start = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
with db.session_scope(settings.db_url) as s:
    prog = progress.progress(session=s, day_start=day_start)
    ratings = progress.ratings(session=s)
    daily = progress.per_day(session=s, tz=tz)
    agreeing = progress.agreement_per_day(session=s, tz=tz)

if prog.items_total == 0:
    st.info(
        "The review queue is empty. An admin fills it on the Review queue page or with "
        "`shadowtutor review enqueue`."
    )
    st.stop()

c1, c2, c3, c4 = st.columns(4)
c1.metric(
    "Queue (open items)",
    f"{prog.queue_open:,}",
    help=f"{prog.items_done:,} of {prog.items_total:,} items done",
)
c2.metric(f"Reviewed today ({settings.timezone})", f"{prog.reviewed_today:,}")
c3.metric(
    "Reviews", f"{prog.reviews_total:,}", help="Current approve/reject reviews; skips not counted"
)
c4.metric(
    "Median time per review",
    "n/a" if prog.median_seconds is None else f"{prog.median_seconds:,.0f} s",
)

if daily:
    filters.plot(charts.reviews_per_day, pd.DataFrame(daily), settings.timezone)

st.subheader("Per reviewer", divider="gray")
st.dataframe(
    [
        {
            "reviewer": r.reviewer,
            "reviews": r.reviews,
            "approved": r.approved,
            "rejected": r.rejected,
            "skipped": r.skipped,
            "today": r.today,
            # rounded, and a dash (not None) for someone who only skipped
            "median seconds": "—" if r.median_seconds is None else f"{r.median_seconds:,.0f}",
        }
        for r in prog.per_reviewer
    ],
    hide_index=True,
    column_config={"median seconds": st.column_config.TextColumn("Median seconds per review")},
)

st.subheader("Agreement", divider="gray")
alpha = agreement.score_alpha(ratings, "ordinal")
pairs = agreement.pair_agreement(ratings)
st.metric(
    "Krippendorff's alpha (ordinal) on student scores",
    "n/a" if alpha is None else f"{alpha:.3f}",
    help="1 = perfect agreement, 0 = no better than chance. Needs items with two or more "
    "scored reviews. Above 0.8 is reliable; 0.667 to 0.8 is tentative.",
)
if alpha is None:
    st.caption(
        "Not enough items with two or more reviews yet: set reviews per pair to 2 when "
        "filling the queue."
    )
if pairs:
    st.caption(
        "Raw agreement is the share of shared items where both reviewers made the same "
        "approve/reject decision. Cohen's kappa removes the agreement expected by chance: when "
        "almost every pair is approved, two reviewers agree most of the time by chance alone, "
        "so a kappa near 0 beside 95% agreement means the decisions add little beyond "
        "'approve'; it is not a disagreement. Kappa above 0.6 is substantial, above 0.8 "
        "almost perfect. n/a: both reviewers always gave the same single decision."
    )
    st.dataframe(
        [
            {
                "reviewer A": p.reviewer_a,
                "reviewer B": p.reviewer_b,
                "items in common": p.items,
                "agree on approve/reject": p.percent,
                # undefined when both always gave the same decision: a word, never "None"
                "Cohen's kappa": display.cell(p.kappa, "{:.2f}", "n/a (one decision)"),
            }
            for p in pairs
        ],
        hide_index=True,
        column_config={
            "agree on approve/reject": st.column_config.ProgressColumn(
                format="percent", min_value=0, max_value=1
            ),
            "Cohen's kappa": st.column_config.TextColumn(
                help="Agreement beyond chance; n/a when both reviewers always gave the same "
                "decision (then chance explains everything and kappa is undefined).",
            ),
        },
    )
if agreeing:
    filters.plot(charts.agreement_over_time, pd.DataFrame(agreeing), settings.timezone)
disputed = agreement.disagreements(ratings)
st.markdown(f"**Items where reviewers disagree: {len(disputed)}**")
if disputed:
    st.dataframe(
        [
            {
                "item": d.item_id,
                "pair": d.pair_id,
                "why": "; ".join(d.reasons),
                "decisions": ", ".join(f"{k}: {v}" for k, v in d.decisions.items()),
                "scores": ", ".join(f"{k}: {v}" for k, v in d.scores.items()),
            }
            for d in disputed
        ],
        hide_index=True,
    )

st.subheader("LLM judge against the reviewers", divider="gray")
with db.session_scope(settings.db_url) as s:
    judge = progress.judge_calibration(session=s)
cal = judge.calibration
if cal.n == 0:
    st.info(
        "No pairs scored by both the judge and a reviewer yet. Run `shadowtutor judge run` "
        "(it scores queued pairs first, in both answer orders)."
    )
else:
    st.text(f"Judge: {cal.judge_version}")  # a model name: text, never Markdown
    k1, k2, k3, k4 = st.columns(4)
    o = cal.overall
    k1.metric(
        "Weighted kappa (quadratic)",
        "n/a" if o.kappa != o.kappa else f"{o.kappa:.2f}",
        help="Judge vs human student scores on the same pairs; 1 = perfect, 0 = chance.",
    )
    k2.metric("Mean bias (judge - human)", "n/a" if o.bias != o.bias else f"{o.bias:+.2f}")
    k3.metric("Pairs scored by both", f"{cal.n:,}")
    k4.metric(
        "Judge runs",
        f"{judge.counts['scored']:,} scored",
        help=f"{judge.counts['failed']:,} failed; "
        + scores.cost_text(judge.counts["cost_usd"], judge.counts["unpriced"]),
    )
    st.caption(
        "Judge scores are stored apart from reviews and never count as reviews; the gate "
        "combines them with human reviews (prediction-powered) on the Readiness page."
    )
    left, right = st.columns([2, 3])
    left.markdown("**Confusion (rows: human, columns: judge)**")
    left.dataframe(judge.confusion_rows(), hide_index=True)
    right.markdown("**Per category and language**")
    groups = display.formatted(
        judge.group_rows(),
        {
            "pairs": "{:,}",
            "weighted kappa": "{:.3f}",
            "mean bias (judge - human)": "{:+.3f}",
            "exact agreement": "{:.1%}",
            "same answer preferred in both orders": "{:.1%}",
        },
        missing="n/a",
    )
    right.dataframe(groups, hide_index=True)

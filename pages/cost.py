"""Cost: teacher spend, projection and budget alerts, trends, breakdowns, savings."""

from __future__ import annotations

import streamlit as st

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.app import auth, deps, filters
from shadowtutor.app.text import inert
from shadowtutor.cost import budget, pricing, spend
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate import criteria, killswitch, rollout
from shadowtutor.log.analytics import Filters
from shadowtutor.views import charts, savings

user = auth.guard("cost")


def _stages(settings) -> tuple[int, ...]:  # noqa: ANN001
    try:
        stages = criteria.load_config(settings.gate_config or None).stages
    except ShadowTutorError:  # a broken criteria file is Readiness's message; defaults here
        stages = criteria.load_config(None).stages
    return tuple(s.percent for s in stages if s.percent > 0)


settings = deps.settings()
st.title("Cost")
con = filters.connect_or_stop(settings)
try:
    prices = pricing.load_table(settings.price_table)
except FileNotFoundError as exc:
    st.error(inert(exc))
    st.stop()

now = filters.local_now(settings.timezone)
windows = spend.spend_windows(con, now)
rate = budget.run_rate(windows.trailing_7d, now, windows.first_pair)
proj = budget.project(now=now, month_to_date=windows.month_to_date, daily_rate=rate)
with db.session_scope(settings.db_url) as session:
    row = budget.current_budget(session=session)
    monthly = row.monthly_usd if row else None
    stage = 0 if killswitch.killed(settings) else rollout.current_stage(session=session)

unknown = windows.unknown
money = (lambda v: "unknown") if unknown else (lambda v: f"${v:,.2f}")  # noqa: E731
c = st.columns(4)
c[0].metric("Teacher spend today", money(windows.today))
c[1].metric("Month to date", money(windows.month_to_date))
c[2].metric(
    "Projected month end",
    money(proj.projected),
    help="No pair has a teacher cost, so there is nothing to project."
    if unknown
    else f"Run rate ${rate:,.2f}/day "
    f"(trailing 7 days) x {proj.days_left:.1f} days left, plus month to date.",
)
c[3].metric("Monthly budget", "not set" if monthly is None else f"${monthly:,.2f}")
if unknown:
    st.error(inert(spend.unknown_spend_message(spend.cost_coverage(con, Filters(), prices))))
elif monthly is not None:
    severity, text = budget.alert_message(budget.budget_status(proj, monthly), proj)
    getattr(st, severity)(text)
elif permissions.allowed(user.role, "budget.set"):
    st.info("No monthly budget is set yet: set one below to get alerts at 50%, 80% and 100%.")
st.caption("Budget figures cover all traffic; the filters below drive the charts.")

if permissions.allowed(user.role, "budget.set"):
    with st.expander("Set the monthly budget"), st.form("budget"):
        amount = st.number_input(
            "Monthly teacher budget (USD)", min_value=0.0, step=100.0, value=float(monthly or 0.0)
        )
        if st.form_submit_button("Save budget", type="primary"):
            try:
                with db.session_scope(settings.db_url) as session:
                    budget.set_budget(session=session, monthly_usd=amount, actor_id=user.id)
            except ShadowTutorError as exc:
                st.error(inert(exc))
            else:
                st.rerun()

f = filters.selection(con, "cost", settings.timezone)
message = spend.coverage_message(spend.cost_coverage(con, f, prices))
if message:
    st.warning(inert(message))

by_day = spend.spend_by_day(con, f)
if len(by_day) == 1:
    st.info(
        f"The filtered log covers a single day ({by_day['day'].iloc[0]:%Y-%m-%d}); "
        "trends need more days, so the hourly view is shown."
    )
grain = st.segmented_control("Trend", ["Daily", "Hourly"], default="Daily", key="cost-grain")
if grain == "Hourly" or len(by_day) == 1:
    filters.chart(
        spend.spend_by_hour(con, f),
        charts.spend_trend,
        "hour",
        settings.timezone,
        name="spend_by_hour",
        empty="No spend in this period.",
    )
else:
    filters.chart(
        by_day,
        charts.spend_trend,
        "day",
        settings.timezone,
        name="spend_by_day",
        empty="No spend in this period.",
    )
filters.chart(
    spend.spend_heatmap(con, f),
    charts.spend_heatmap,
    settings.timezone,
    name="spend_heatmap",
    empty="No spend in this period.",
)

cols = st.columns(2)
for i, dim in enumerate(spend.DIMENSIONS):
    with cols[i % 2]:
        filters.chart(
            spend.spend_by(con, f, dim),
            charts.spend_breakdown,
            dim,
            name=f"spend_by_{dim}",
            empty=f"No spend by {dim}.",
        )

st.subheader("Most expensive prompts")
top = spend.top_prompts(con, f, limit=20)
if top.empty:
    st.info("No priced pairs in this selection.")
else:
    shown = top.drop(columns=["id"]).rename(columns=spend.TOP_PROMPT_LABELS)
    st.dataframe(
        shown,
        hide_index=True,
        column_config={
            "Teacher USD": st.column_config.NumberColumn(format="$%.4f"),
            "Time": st.column_config.DatetimeColumn(f"Time ({settings.timezone})"),
            "Prompt tokens": st.column_config.NumberColumn(format="localized"),
            "Completion tokens": st.column_config.NumberColumn(format="localized"),
        },
    )
    filters.download(top, "top_prompts")

st.subheader("Savings")
with db.session_scope(settings.db_url) as session:
    eligible = savings.eligible_categories(session=session, configured=settings.eligible)
if eligible.none:
    inputs = spend.SavingsInputs(days=0, requests=0, teacher_usd=0.0, student_usd=0.0)
else:
    inputs = spend.savings_inputs(con, f, eligible.categories or frozenset())
s = budget.savings(
    teacher_usd=inputs.teacher_usd,
    student_usd=inputs.student_usd,
    days=inputs.days,
    stage=stage,
    flat_monthly=settings.student_monthly_cost_usd,
)
if eligible.none:
    st.info(
        inert(
            f"No category is eligible yet ({eligible.source}): the student takes no traffic, "
            "so nothing is saved. Readiness shows what is missing."
        )
    )
c = st.columns(3)
c[0].metric(f"Per month at the current stage ({stage}%)", f"${s.at_stage:,.2f}")
c[1].metric("Per month at 100% of eligible traffic", f"${s.at_full:,.2f}")
c[2].metric("Teacher cost of eligible traffic / month", f"${s.teacher_monthly:,.2f}")
st.caption(
    f"Only eligible traffic counts: {inert(eligible.describe())}. From {inputs.requests:,} "
    f"eligible pairs over {inputs.days:,} days, scaled to 30 days. Student per-token cost "
    f"${s.student_monthly:,.2f}/month; flat student cost ${s.flat_monthly:,.2f}/month is paid "
    "at every stage."
)
st.dataframe(
    budget.stage_table(s, _stages(settings)),
    hide_index=True,
    column_config={
        "stage": st.column_config.TextColumn("Rollout stage"),
        "saved per month": st.column_config.NumberColumn("Saved per month", format="dollar"),
    },
)

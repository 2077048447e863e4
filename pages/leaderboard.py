"""Leaderboard: the active students on the same live prompts, two of them compared pair by
pair, and each version's learning curve."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shadowtutor.app import auth, deps, filters
from shadowtutor.app.text import inert
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate import criteria
from shadowtutor.students import leaderboard

TTL_S = 300  # figures up to 5 minutes old; every visit recomputed them (4-6.6 s, issue 27)

user = auth.guard("leaderboard")
settings = deps.settings()
st.title("Leaderboard")
days = st.slider("Days of live traffic", 1, 60, 14, key="lb-days")


@st.cache_data(ttl=TTL_S, show_spinner="Reading every student's answers…")
def board(db_url: str, log: str, days: int, config_hash: str) -> tuple:
    config = criteria.load_config(settings.gate_config or None)
    rows, active, every = leaderboard.load(settings, days=days)
    if rows.empty:
        return rows, [], pd.DataFrame(), pd.DataFrame()
    table = leaderboard.standings_frame(leaderboard.standings(rows, active, config, days=days))
    return rows, [s.name for s in active], table, leaderboard.learning_curve(rows, every)


@st.cache_data(ttl=TTL_S, show_spinner="Comparing the two students…")
def compare(db_url: str, log: str, days: int, config_hash: str, a: str, b: str) -> pd.DataFrame:
    rows = board(db_url, log, days, config_hash)[0]
    return leaderboard.differences_frame(leaderboard.paired_differences(rows, a, b))


try:
    config = criteria.load_config(settings.gate_config or None)
    key = (settings.db_url, str(settings.log_path), days, config.hash)
    rows, names, table, curve = board(*key)
except ShadowTutorError as exc:
    st.error(inert(exc))
    st.stop()
if rows.empty:
    st.info("No student answers in this period yet: the collector logs them as traffic comes.")
    st.stop()

st.caption(
    "Every student on the requests all of them answered; each figure with its 95% interval. "
    f"Gate: the shipped criteria applied to this window's figures. Up to {TTL_S // 60} "
    "minutes old."
)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={"rank": {"width": 45}, "student": {"width": 80}, "gate": {"width": 190}},
)

st.subheader("Compare two students")
if len(names) < 2:
    st.info("Register a second student (Students page) to compare two on the same prompts.")
else:
    c = st.columns(2)
    a = c[0].selectbox("Student A", names, index=0, key="lb-a")
    b = c[1].selectbox("Student B", [n for n in names if n != a], index=0, key="lb-b")
    st.dataframe(
        compare(*key, a, b),
        hide_index=True,
        width="stretch",
        column_config={"metric": {"width": 100}, "shared prompts": {"width": 110}},
    )
    st.caption("A minus B on the prompts both answered; an interval that holds 0 is a tie.")

st.subheader("Learning curve")
if curve.empty:
    st.info("No data for any student version yet.")
else:
    st.caption("Each version's figures over all its data up to each day.")
    filters.plot(leaderboard.curve_figure, curve)

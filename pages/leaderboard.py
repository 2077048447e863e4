"""Leaderboard: the active students on the same live prompts, two of them compared pair by
pair, and each version's learning curve."""

from __future__ import annotations

import streamlit as st

from shadowtutor.app import auth, deps
from shadowtutor.app.text import inert
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate import criteria
from shadowtutor.students import leaderboard

user = auth.guard("leaderboard")
settings = deps.settings()
st.title("Leaderboard")
days = st.slider("Days of live traffic", 1, 60, 14, key="lb-days")
try:
    config = criteria.load_config(settings.gate_config or None)
    rows, active, every = leaderboard.load(settings, days=days)
except ShadowTutorError as exc:
    st.error(inert(exc))
    st.stop()
if rows.empty:
    st.info("No student answers in this period yet: the collector logs them as traffic comes.")
    st.stop()

st.caption(
    "Every student on the requests all of them answered; each figure with its 95% interval. "
    "Gate: the shipped criteria applied to this window's figures."
)
board = leaderboard.standings(rows, active, config, days=days)
st.dataframe(leaderboard.standings_frame(board), hide_index=True, width="stretch")

st.subheader("Compare two students")
names = [s.name for s in active]
if len(names) < 2:
    st.info("Register a second student (Students page) to compare two on the same prompts.")
else:
    c = st.columns(2)
    a = c[0].selectbox("Student A", names, index=0, key="lb-a")
    b = c[1].selectbox("Student B", [n for n in names if n != a], index=0, key="lb-b")
    st.dataframe(
        leaderboard.differences_frame(leaderboard.paired_differences(rows, a, b)),
        hide_index=True,
        width="stretch",
    )
    st.caption("A minus B on the prompts both answered; an interval that holds 0 is a tie.")

st.subheader("Learning curve")
curve = leaderboard.learning_curve(rows, every)
if curve.empty:
    st.info("No data for any student version yet.")
else:
    st.caption("Each version's figures over all its data up to each day.")
    st.plotly_chart(leaderboard.curve_figure(curve), width="stretch")

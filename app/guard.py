"""The users' feedback section of Readiness and Home: the rollout guard's verdicts, student
against teacher, per category and signal (:mod:`shadowtutor.views.guard`). One call from
each page. Category names come from the log: every line is shown with ``st.text``."""

from __future__ import annotations

import streamlit as st

from shadowtutor.app.text import inert
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate import criteria
from shadowtutor.views import guard


def render(settings: Settings, student: str | None = None, *, compact: bool = False) -> None:
    """The section: the verdict lines, then (not ``compact``: Readiness) the rates per stage
    and how the error budget is spent. Home shows it ``compact``."""
    try:
        config = criteria.load_config(settings.gate_config or None)
        view = guard.load(settings, config, student)
    except ShadowTutorError as exc:
        st.error(inert(exc))
        return
    st.subheader("Users' feedback: student against teacher")
    if compact:
        st.text(guard.summary(view))
    for line in guard.home_lines(view) if compact else view.lines:
        st.text(line)
    for note in view.notes:
        st.text(note)
    if compact:
        return
    if view.stages:
        with st.expander("Rates per rollout stage"):
            for line in view.stages:
                st.text(line)
    st.caption(
        "During a rollout the stable hash splits users at random between the student and the "
        "teacher, so the two arms' reactions compare fairly. Each difference (student minus "
        "teacher, in points) has anytime-valid bounds: WORSE beyond the criteria file's margin "
        "rolls the rollout back at the next evaluation; NO WORSE can be required to advance."
    )
    st.text(view.report.since + "; " + view.report.budget)

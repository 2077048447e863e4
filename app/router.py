"""Readiness's section on the per-request router: its version and mode, the frontier per
category with the chosen thresholds, the audit from later reviews, and the versions. One call
from the page (:func:`render`); the view-model is :mod:`shadowtutor.views.router`. Category
names come from the log: shown as text and in dataframes, never as Markdown."""

from __future__ import annotations

import streamlit as st

from shadowtutor import db
from shadowtutor.app import filters
from shadowtutor.app.text import inert
from shadowtutor.config import Settings
from shadowtutor.gate.criteria import GateConfig
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.views import router


def render(settings: Settings, config: GateConfig, student: str | None) -> None:
    st.subheader("Per-request router")
    with db.session_scope(settings.db_url) as session:
        view = router.load(session, config, student or DEFAULT_STUDENT)
    st.text(router.summary(view))  # names a student: text, never Markdown
    if view.active is None:
        st.caption(
            "A router learns from the reviews which requests the student answers acceptably; "
            "its threshold per category is tested on held-out reviews so that the student's "
            "routed traffic keeps the floor with 95 % confidence. See the Router page of the docs."
        )
        return
    filters.plot(router.frontier_figure, view)
    st.dataframe(router.thresholds_frame(view), hide_index=True, width="stretch")
    st.caption(
        "Each point is a threshold tested in a fixed sequence from high to low on held-out "
        "reviews: its floor holds, with the other points before it, at the stated confidence. "
        "The star is the lowest threshold whose floor clears the router's floor. In routed "
        "mode the student serves a request of such a category when its score clears the "
        "threshold (the rollout's stage applies on top); categories without one keep the "
        "gate's category decision."
    )
    _cascade(settings, view)
    st.markdown("**Audit from reviews given after this version was trained**")
    audit = router.audit_frame(view)
    if audit.empty:
        st.info("No reviews since this version was trained yet.")
    else:
        st.dataframe(audit, hide_index=True, width="stretch")
    with st.expander("Versions (shadowtutor router show / rollback)"):
        st.dataframe(router.versions_frame(view), hide_index=True, width="stretch")
        st.text(inert(f"Judge labels: {view.active.counts.get('judge', '-')}"))
        st.text(inert(f"Users' feedback labels: {view.active.counts.get('feedback', '-')}"))


# The whole log's records of the student read on every Readiness run otherwise: a visit
# within the minute reuses it (the log's path and the student are the key).
@st.cache_data(ttl=60, show_spinner=False)
def _cascade_traffic(log: str, student: str, _settings: Settings) -> router.CascadeTraffic:
    return router.cascade_traffic(_settings, student)


def _cascade(settings: Settings, view: router.RouterView) -> None:
    st.markdown("**Cascade: the router lets the student try, a validator checks its answer**")
    if not view.cascades:
        st.info(
            "This version has no validator: its training pairs held no student answers with "
            "both labels. Train a new version once such reviews exist."
        )
        return
    st.dataframe(router.cascade_frame(view), hide_index=True, width="stretch")
    st.caption(
        "In cascade mode a non-streamed request goes to the student when the router's score "
        "clears 'router tries at'; the validator then reads the request and the student's "
        "answer, and below 'validator serves at' the teacher answers instead: the user waits "
        "for both. The points are tested in a fixed sequence on held-out reviews; the floor "
        "holds for what the student serves, at the stated confidence. Streams are routed."
    )
    try:
        live = _cascade_traffic(str(settings.log_path), view.student, settings)
    except Exception as exc:  # the log unreadable: say so, keep the page
        st.warning(inert(f"The log could not be read for the validator's record: {exc}"))
        return
    st.text(live.sentence())

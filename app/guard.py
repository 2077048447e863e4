"""The users' feedback section of Readiness and Home: the rollout guard's verdicts, student
against teacher, per category and signal (:mod:`shadowtutor.views.guard`). One call from
each page. Category names come from the log: every line is shown with ``st.text``."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from shadowtutor.app.text import inert
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate import criteria, guard_evidence
from shadowtutor.gate.guard import Report
from shadowtutor.views import guard

TTL_S = 60


# Reading the whole log's feedback and bounding every difference took 0.3-0.5 s of each Home
# and Readiness run (most of Home's server time; issue 27 item 11). It is kept for a minute,
# and read again at once when the rollout or the evidence epoch changes (``scope`` is the key;
# not the epoch's start, which slides with the clock before any rollout).
@st.cache_data(ttl=TTL_S, show_spinner=False)
def _view(
    log_path: str, db_url: str, config_hash: str, student: str | None, scope: str,
    _settings: Settings, _config: criteria.GateConfig,
) -> guard.FeedbackView:  # fmt: skip
    return guard.load(_settings, _config, student)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _report(
    log_path: str, db_url: str, config_hash: str, student: str | None, scope: str,
    _settings: Settings, _config: criteria.GateConfig,
) -> Report:  # fmt: skip
    return guard_evidence.report(_settings, _config, now=datetime.now(UTC), student=student)


def _scope(settings: Settings, config: criteria.GateConfig, student: str | None) -> str:
    scope = guard_evidence.scope(settings, config, now=datetime.now(UTC), student=student)
    return repr((scope.epoch, scope.state))


def _load(settings: Settings, config: criteria.GateConfig, student: str | None):  # noqa: ANN202
    key = _scope(settings, config, student)
    return _view(
        str(settings.log_path), settings.db_url, config.hash, student, key, settings, config
    )


def report(settings: Settings, config: criteria.GateConfig, student: str | None) -> Report:
    """The guard's report on ``student`` (Readiness's blockers), kept as the section is."""
    key = _scope(settings, config, student)
    return _report(
        str(settings.log_path), settings.db_url, config.hash, student, key, settings, config
    )


def render(settings: Settings, student: str | None = None, *, compact: bool = False) -> None:
    """The section: the verdict lines, then (not ``compact``: Readiness) the rates per stage
    and how the error budget is spent. Home shows it ``compact``."""
    try:
        config = criteria.load_config(settings.gate_config or None)
        view = _load(settings, config, student)
    except ShadowTutorError as exc:
        st.error(inert(exc))
        return
    if compact and guard.idle(view):
        st.text(guard.IDLE)
        return
    st.subheader("Users' feedback: student against teacher")
    if compact:
        st.text(guard.summary(view))
    for line in [] if guard.idle(view) else guard.home_lines(view) if compact else view.lines:
        st.text(line)  # before any rollout there is nothing to compare: the notes say so
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
    st.caption(f"Read again every {TTL_S} s, and at once when the rollout moves.")

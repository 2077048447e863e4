"""Readiness: the deploy gate's decision with its evidence, the rollout, and the audit trail.

Everyone here may read; only admins may act (the role is checked again before each write).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import streamlit as st

from shadowtutor import db, students
from shadowtutor.accounts import permissions
from shadowtutor.app import (
    auth,
    criteria_ui,
    deps,
    filters,
    gate_actions,
    gate_epoch,
    guard,
    kinds,
    router,
)
from shadowtutor.app.text import inert
from shadowtutor.config import shown_path
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate import buckets, criteria, evidence, killswitch
from shadowtutor.views import readiness

user = auth.guard("readiness")
settings = deps.settings()
admin = any(permissions.allowed(user.role, a) for a in gate_actions.ACTIONS)
st.title("Readiness")
try:
    config = criteria.load_config(settings.gate_config or None)
    with db.session_scope(settings.db_url) as session:
        names = [s.name for s in students.list_students(session=session)]
    student = (  # with registered students, the gate decides about one of them at a time
        st.selectbox("Student", names, key="readiness-student") if names else None
    )
    view = readiness.load(
        settings, config, student, feedback=guard.report(settings, config, student)
    )
except ShadowTutorError as exc:
    st.error(inert(exc))
    st.stop()
shipped = not settings.gate_config
where = "shipped defaults" if shipped else "SHADOWTUTOR_GATE_CONFIG"
name = shown_path(config.path, settings.home_path)
st.caption(
    f"Criteria {name} ({where}) · version {config.version} · sha256 {config.hash[:12]}"
    + (f" · file {config.path}" if admin else "")  # admins edit it: they need where it is
)
if flash := st.session_state.pop(gate_actions.FLASH, None):
    st.toast(inert(flash))  # it may name a category from the log

level, text = readiness.headline(view)
getattr(st, level)(inert(text))  # names categories from the log
if made_under := readiness.criteria_note(view.decision, config):
    st.caption(inert(made_under))
state = view.state
env_kill = killswitch.killed(settings)  # the one reader of the kill switch
c = st.columns(4)
c[0].metric("Rollout stage", f"{state.stage}%", help="Share of eligible traffic the student serves")
c[1].metric("Kill switch", "ON" if state.killed else ("ON (env)" if env_kill else "off"))
# The count in the metric (a list of names would be cut to "cas…"), the names in full below.
c[2].metric(
    "Eligible categories",
    readiness.eligible_value(state.categories),
    help="The rollout's eligible categories: a GO's categories become eligible when an admin "
    "approves it and advances the rollout; the stage says how much of their traffic the "
    "student serves.",
)
c[3].metric(
    "Served by the student",
    f"{view.served:,}",
    help="Requests the student answered at the current stage",
)
if line := readiness.eligible_line(state.categories, view):
    st.text(line)  # category names come from the log: text, never Markdown
st.caption(inert("Approval: " + view.approval.describe()))
if state.killed or env_kill:
    where = "SHADOWTUTOR_KILL_SWITCH is set" if env_kill else "The kill switch is on"
    st.error(f"{where}: the teacher answers every request.")

st.subheader("Criteria")
criteria_ui.show(
    readiness.criteria_frame(view.evidence),
    readiness.criteria_notes(view.evidence, view.pace, config.window_days),
    readiness.plain(view.evidence),
    key="criteria",
)
st.caption(
    "Bounds are anytime valid: each holds at every evaluation, however often the gate is "
    "looked at, so a GO reached early stands."
)
if since := readiness.epoch_note(view.evidence):
    st.text(since)  # the reason may be an admin's words: text, never Markdown
gate_epoch.render(settings, config, user, student, view.evidence)
if budget := readiness.budget_note(view.evidence):
    st.caption(inert(budget))
st.text(readiness.judge_note(view.evidence))  # names a model: text, never Markdown
kinds.readiness_section(view)
guard.render(settings, student)
router.render(settings, config, student)

if admin:
    gate_actions.render(view, config, settings, user)
else:
    st.caption("Read-only: only admins evaluate, approve, advance, roll back or kill.")


# The past days' points change only when old data arrives late: computed once a day (the
# whole replay took 11-40 s on the demo, on every visit after 5 minutes; issue 27 item 11).
@st.cache_data(ttl=86_400, show_spinner="Replaying the gate day by day (once a day)…")
def replay_past(log_dir: str, db_url: str, config_hash: str, today: date) -> list:
    return readiness.replay_points(settings, config, days=59, today=today - timedelta(days=1))


@st.cache_data(ttl=300, show_spinner="Replaying today…")
def replay_today(log_dir: str, db_url: str, config_hash: str, today: date) -> list:
    return readiness.replay_points(settings, config, days=1, today=today)


@st.cache_data(ttl=300)
def calibration(db_url: str, config_hash: str) -> buckets.Calibration:
    with db.session_scope(db_url) as session:
        return evidence.calibration(session=session, config=config)


st.subheader("Similarity and review scores")
cal = calibration(settings.db_url, config.hash)
current = config.similarity_thresholds.get(cal.method)
filters.plot(readiness.calibration_figure, cal, current)
st.caption(readiness.calibration_note(cal, current))

st.subheader("Readiness over time")
today = datetime.now(UTC).date()
filters.plot(
    readiness.replay_figure,
    replay_past(str(settings.log_path), settings.db_url, config.hash, today)
    + replay_today(str(settings.log_path), settings.db_url, config.hash, today),
)

st.caption("Past days are replayed once a day, today every 5 minutes.")

st.subheader("Audit trail")
others = readiness.audit_others(view.audit, student)
every = others > 0 and st.toggle(f"Show the other students' rows too ({others:,})", key="audit-all")
st.dataframe(
    readiness.audit_frame(view.audit, None if every else student),
    hide_index=True,
    width="stretch",
    column_config={  # fits 1,024 px: the reason, last, is cut there (hover shows it whole)
        "When (UTC)": {"width": 150},
        "Student": {"width": 80},
        "Who": {"width": 90},
        "What": {"width": 200},
        "Evidence / reason": {"width": 160},
        "Flag": {"width": 50},
    },
)
if view.history:
    past = {f"#{d.id} {criteria.label(d.outcome)} ({d.created_at:%Y-%m-%d %H:%M}, "
            f"criteria sha256 {d.config_hash[:8]})": d for d in view.history}  # fmt: skip
    pick = st.selectbox("Evidence of decision", list(past), key="readiness-evidence")
    old = past[pick].evidence
    criteria_ui.show(
        readiness.criteria_frame(old), readiness.criteria_notes(old), readiness.plain(old), "past"
    )

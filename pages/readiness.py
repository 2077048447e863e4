"""Readiness: the deploy gate's decision with its evidence, the rollout, and the audit trail.

Everyone here may read; only admins may act (the role is checked again before each write).
"""

from __future__ import annotations

import streamlit as st

from shadowtutor import db, students
from shadowtutor.accounts import permissions
from shadowtutor.app import auth, deps, gate_actions, gate_epoch, guard, kinds, router
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
    view = readiness.load(settings, config, student)
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
c[3].metric("Served by the student at this stage", f"{view.served:,}")
if line := readiness.eligible_line(state.categories, view):
    st.text(line)  # category names come from the log: text, never Markdown
st.caption(inert("Approval: " + view.approval.describe()))
if state.killed or env_kill:
    where = "SHADOWTUTOR_KILL_SWITCH is set" if env_kill else "The kill switch is on"
    st.error(f"{where}: the teacher answers every request.")

st.subheader("Criteria")
table = readiness.criteria_frame(view.evidence, view.pace, config.window_days)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    height=36 * (len(table) + 1) + 4,
    column_config={"What is missing": st.column_config.TextColumn(width="large")},
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


@st.cache_data(ttl=300, show_spinner="Replaying the gate day by day…")
def replay(log_dir: str, db_url: str, config_hash: str) -> list:
    return readiness.replay_points(settings, config)


@st.cache_data(ttl=300)
def calibration(db_url: str, config_hash: str) -> buckets.Calibration:
    with db.session_scope(db_url) as session:
        return evidence.calibration(session=session, config=config)


st.subheader("Similarity and review scores")
cal = calibration(settings.db_url, config.hash)
current = config.similarity_thresholds.get(cal.method)
st.plotly_chart(readiness.calibration_figure(cal, current), width="stretch")
st.caption(readiness.calibration_note(cal, current))

st.subheader("Readiness over time")
st.plotly_chart(
    readiness.replay_figure(replay(str(settings.log_path), settings.db_url, config.hash)),
    width="stretch",
)

st.subheader("Audit trail")
st.dataframe(readiness.audit_frame(view.audit), hide_index=True, width="stretch")
if view.history:
    past = {f"#{d.id} {criteria.label(d.outcome)} ({d.created_at:%Y-%m-%d %H:%M}, "
            f"criteria sha256 {d.config_hash[:8]})": d for d in view.history}  # fmt: skip
    pick = st.selectbox("Evidence of decision", list(past), key="readiness-evidence")
    st.dataframe(readiness.criteria_frame(past[pick].evidence), hide_index=True, width="stretch")

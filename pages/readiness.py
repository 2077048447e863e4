"""Readiness: the deploy gate's decision with its evidence, the rollout, and the audit trail.

Everyone here may read; only admins may act (the role is checked again before each write).
"""

from __future__ import annotations

import streamlit as st

from app import auth, deps
from core import db, decisions, gate, gate_data, readiness, rollout
from core.errors import ShadowTutorError

user = auth.guard("readiness")
settings = deps.settings()
admin = user.role == "admin"
st.title("Readiness")
try:
    config = gate.load_config(settings.gate_config or None)
    view = readiness.load(settings, config)
except ShadowTutorError as exc:
    st.error(str(exc))
    st.stop()
st.caption(f"Criteria {config.path} · version {config.version} · sha256 {config.hash[:12]}")
if flash := st.session_state.pop("readiness-flash", None):
    st.toast(flash)


def allowed() -> bool:
    """The role, checked again on the server right before any write."""
    if auth.current_user() is None or auth.current_user().role != "admin":
        st.error("Only an admin may do this.")
        return False
    return True


def act(fn, done: str) -> None:  # noqa: ANN001
    """Run an admin action in one transaction; show its error or reload with a note."""
    if not allowed():
        return
    try:
        with db.session_scope(settings.db_url) as session:
            fn(session)
    except ShadowTutorError as exc:
        st.error(str(exc))
        return
    st.session_state["readiness-flash"] = done
    st.rerun()


level, text = readiness.headline(view)
getattr(st, level)(text)
state = view.state
c = st.columns(4)
c[0].metric("Rollout stage", f"{state.stage}%", help="Share of eligible traffic the student serves")
c[1].metric("Kill switch", "ON" if state.killed else "off")
c[2].metric("Eligible categories", ", ".join(state.categories) or "-")
c[3].metric("Served by the student at this stage", f"{view.served:,}")
st.caption("Approval: " + view.approval.describe())
if state.killed:
    st.error("The kill switch is on: the teacher answers every request.")

st.subheader("Criteria")
table = readiness.criteria_frame(view.evidence)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    height=36 * (len(table) + 1) + 4,
    column_config={"What is missing": st.column_config.TextColumn(width="large")},
)

if admin:
    st.subheader("Actions")
    d = view.decision
    a = st.columns(3)
    if a[0].button("Evaluate now", type="primary", icon=":material/refresh:"):
        try:
            result = allowed() and gate_data.evaluate(settings, config, actor_id=user.id)
        except ShadowTutorError as exc:
            st.error(str(exc))
        else:
            if not result:
                st.stop()
            note = f"Decision #{result.decision_id}: {readiness.LABELS[result.decision.outcome]}"
            st.session_state["readiness-flash"] = note + (
                f". AUTOMATIC ROLLBACK: {result.rollback}" if result.rollback else ""
            )
            st.rerun()
    if d is not None and d.outcome == gate.GO and not view.approval.approved:
        if a[1].button(f"Approve GO #{d.id}", icon=":material/verified:"):
            act(
                lambda s: decisions.approve(session=s, decision_id=d.id, actor_id=user.id),
                f"Decision #{d.id} approved",
            )
    nxt = view.next_stage
    if nxt is not None and a[2].button(f"Advance to {nxt}%", disabled=bool(view.blockers)):
        act(
            lambda s: rollout.advance(
                session=s, config=config, actor_id=user.id, served_at_stage=view.served
            ),
            f"Advanced to {nxt}%",
        )
    for problem in view.blockers if nxt is not None else []:
        st.caption(f"Before advancing: {problem}")
    if d is not None and d.outcome == gate.NO_GO and not d.evidence.get("critical_failure"):
        with st.form("override"):
            reason = st.text_area(
                "Override this NO-GO: why are the failed criteria acceptable?",
                key="override-reason",
            )
            if st.form_submit_button(f"Override NO-GO #{d.id}"):
                act(
                    lambda s: decisions.override(
                        session=s, decision_id=d.id, actor_id=user.id, reason=reason
                    ),
                    "Override recorded (flagged)",
                )
    b = st.columns(2)
    with b[0].form("rollback"):
        why = st.text_input("Reason for the rollback", key="rollback-reason")
        if st.form_submit_button("Roll back to 0%", disabled=state.stage == 0):
            act(lambda s: rollout.rollback(session=s, actor_id=user.id, reason=why), "Rolled back")
    with b[1].form("kill"):
        kill_why = st.text_input("Reason", key="kill-reason")
        label = "Release the kill switch" if state.killed else "Pull the kill switch"
        if st.form_submit_button(label, type="secondary" if state.killed else "primary"):
            act(
                lambda s: rollout.set_kill(
                    session=s, actor_id=user.id, on=not state.killed, reason=kill_why
                ),
                label + ": done",
            )
else:
    st.caption("Read-only: only admins evaluate, approve, advance, roll back or kill.")


@st.cache_data(ttl=300, show_spinner="Replaying the gate day by day…")
def replay(log_dir: str, db_url: str, config_hash: str) -> list:
    return readiness.replay_points(settings, config)


@st.cache_data(ttl=300)
def calibration(db_url: str, config_hash: str) -> gate.Calibration:
    with db.session_scope(db_url) as session:
        return gate_data.calibration(session=session, config=config)


st.subheader("Similarity and review scores")
cal = calibration(settings.db_url, config.hash)
current = config.similarity_thresholds.get(cal.method)
st.plotly_chart(readiness.calibration_figure(cal, current), width="stretch")
if cal.suggested is None:
    st.caption(
        f"No suggestion yet: no similarity bucket of {cal.method} reaches a mean score of "
        f"{cal.target:g} from at least 5 reviews, or too few pairs are reviewed."
    )
else:
    st.caption(
        f"Reviewed pairs with {cal.method} similarity ≥ {cal.suggested:.2f} average at least "
        f"{cal.target:g}: a suggested threshold (config: {current}). Change it in the "
        "criteria file; the gate never changes it by itself."
    )

st.subheader("Readiness over time")
st.plotly_chart(
    readiness.replay_figure(replay(str(settings.log_path), settings.db_url, config.hash)),
    width="stretch",
)

st.subheader("Audit trail")
st.dataframe(readiness.audit_frame(view.audit), hide_index=True, width="stretch")

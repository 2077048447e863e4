"""Students: the models shadowed on live traffic; register one, retire one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shadowtutor import db, students
from shadowtutor.app import auth, deps
from shadowtutor.app.text import inert, md
from shadowtutor.errors import ShadowTutorError
from shadowtutor.views import display

FLASH = "students-flash"

user = auth.guard("students")
settings = deps.settings()
st.title("Students")
if flash := st.session_state.pop(FLASH, None):
    st.success(inert(flash))
try:
    with db.session_scope(settings.db_url) as session:
        rows = students.list_students(session=session, include_retired=True)
        table = pd.DataFrame(
            [
                {
                    "name": r.name,
                    "backend": r.backend,
                    "model": r.model,
                    "base URL": r.base_url,
                    "share %": r.share_percent,
                    "version": r.version,
                    "trained on export": r.trained_on or "",
                    "monthly USD": r.monthly_cost_usd,
                    "state": "retired" if r.retired_at else "active",
                    "demo": r.demo,
                }
                for r in rows
            ]
        )
except ShadowTutorError as exc:
    st.error(inert(exc))
    st.stop()
if table.empty:
    spec = students.default_spec(settings)
    st.info("No student is registered: the SHADOWTUTOR_STUDENT_* settings are the one student.")
    st.text(f"default: {spec.backend} {spec.model} at {spec.base_url}")
else:
    shown = display.formatted(table, {"monthly USD": "{:,.2f}", "version": "{}"})
    st.dataframe(shown, hide_index=True, width="stretch")

with st.form("add-student", clear_on_submit=True):
    st.subheader("Register a student")
    c = st.columns(3)
    name = c[0].text_input("Name", placeholder="qwen-v2")
    backend = c[1].selectbox("Backend", students.registry.BACKENDS)
    model = c[2].text_input("Model", placeholder="qwen2.5:7b")
    c = st.columns(3)
    base_url = c[0].text_input("Base URL", placeholder="http://gpu-box:11434")
    share = c[1].number_input("Share of sampled requests (%)", 1.0, 100.0, 100.0)
    cost = c[2].number_input("Monthly cost (USD)", 0.0, value=0.0)
    c = st.columns(2)
    version = c[0].text_input("Version label", placeholder="v2")
    trained_on = c[1].text_input("Trained on export (dataset version)")
    if st.form_submit_button("Register", type="primary"):
        try:
            with db.session_scope(settings.db_url) as session:
                students.add(
                    session=session,
                    actor_id=user.id,
                    name=name.strip(),
                    backend=backend,
                    model=model.strip(),
                    base_url=base_url.strip(),
                    share_percent=share,
                    monthly_cost_usd=cost or None,
                    version=version.strip(),
                    trained_on=trained_on.strip() or None,
                )
            # after the rerun, so that the message stays (a rerun clears what this run drew)
            st.session_state[FLASH] = f"Registered {name.strip()}: shadowed within seconds."
            st.rerun()
        except ShadowTutorError as exc:
            st.error(inert(exc))

active = [r for r in table.to_dict("records") if r["state"] == "active"] if len(table) else []
if active:
    st.subheader("Retire a student")
    gone = st.selectbox(
        "Student",
        [r["name"] for r in active],
        index=None,  # no default: retiring is never one click on the first name
        placeholder="Pick the student to retire",
        key="retire-name",
    )
    reason = ""
    if gone is not None:
        with db.session_scope(settings.db_url) as session:
            stage = students.registry.serving_stage(session=session, name=gone)
        if stage:
            st.warning(
                f"{md(gone)} serves {stage}% of eligible traffic now. Retiring it first rolls "
                "the rollout back to the teacher (0%), with your reason in the audit trail."
            )
            reason = st.text_input("Reason for the rollback", key="retire-reason")
        sure = st.checkbox(
            f"Retire {md(gone)}: it is no longer shadowed, and its name cannot be registered again",
            key="retire-confirm",
        )
        if st.button("Retire", key="retire", disabled=not sure or (stage > 0 and not reason)):
            try:
                with db.session_scope(settings.db_url) as session:
                    done = students.retire(
                        session=session, actor_id=user.id, name=gone, rollback_reason=reason
                    )
                    st.session_state[FLASH] = done.describe()
                for key in ("retire-name", "retire-reason", "retire-confirm"):
                    st.session_state.pop(key, None)
                st.rerun()
            except ShadowTutorError as exc:
                st.error(inert(exc))

"""Students: the models shadowed on live traffic; register one, retire one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shadowtutor import db, students
from shadowtutor.app import auth, deps
from shadowtutor.errors import ShadowTutorError
from shadowtutor.views import display

user = auth.guard("students")
settings = deps.settings()
st.title("Students")
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
    st.error(str(exc))
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
            st.success(f"Registered {name.strip()}: shadowed within seconds.")
            st.rerun()
        except ShadowTutorError as exc:
            st.error(str(exc))

active = [r for r in table.to_dict("records") if r["state"] == "active"] if len(table) else []
if active:
    st.subheader("Retire a student")
    c = st.columns([2, 1])
    gone = c[0].selectbox("Student", [r["name"] for r in active], key="retire-name")
    if c[1].button("Retire", key="retire"):
        try:
            with db.session_scope(settings.db_url) as session:
                students.retire(session=session, actor_id=user.id, name=gone)
            st.rerun()
        except ShadowTutorError as exc:
            st.error(str(exc))

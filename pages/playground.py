"""Playground: chat live with the student (streaming), the teacher beside it if wanted, save
an exchange as a pair, and see the student server's health."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shadowtutor import db, students
from shadowtutor.app import auth, deps, playground_ui
from shadowtutor.app.text import inert
from shadowtutor.backends.clients import student_backend
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError
from shadowtutor.playground import chat
from shadowtutor.students import health

user = auth.guard("playground")
settings = deps.settings()
# With students registered, the Playground offers them (each with its own server and
# model); without, the SHADOWTUTOR_STUDENT_* student and the models its server has.
with db.session_scope(settings.db_url) as session:
    registered = {
        spec.name: spec
        for spec in students.active_specs(settings, session=session)
        if spec.registered
    }
picked = registered.get(st.session_state.get("pg_student") or "") or next(
    iter(registered.values()), None
)
own = picked.settings(settings) if picked else settings  # the chosen student's settings
try:
    backend = student_backend(own)
except ShadowTutorError as exc:  # e.g. SHADOWTUTOR_STUDENT_BACKEND is neither ollama nor openai
    st.error(inert(exc))
    st.stop()


@st.cache_data(ttl=15, show_spinner="Asking the student server…")
def load_health(base_url: str, kind: str, model: str, _own: Settings) -> health.Health:
    return health.check(student_backend(_own, timeout=min(_own.student_timeout_s, 5)), model)


conversation: chat.Chat = st.session_state.setdefault("pg_chat", chat.Chat(model=own.student_model))
chosen = own.student_model if picked else st.session_state.get("pg_model", own.student_model)
report = load_health(own.student_base_url, own.student_backend, chosen, own)

st.title("Playground")
talk, side = st.columns([2, 1], gap="large")
with side:
    if picked:
        st.selectbox(
            "Student", list(registered), index=list(registered).index(picked.name),
            key="pg_student", format_func=lambda n: f"{n} · {registered[n].model}",
        )  # fmt: skip
        conversation.model = picked.model
    else:
        options, fmt = report.pulled_names, {}
        if not health.has_model(options, own.student_model):  # offered, with the fix shown
            options = [*options, own.student_model]
            fmt = {own.student_model: f"{own.student_model} (configured, not on server)"}
        conversation.model = st.selectbox(
            "Student model", options, key="pg_model", format_func=lambda m: fmt.get(m, m)
        )
    conversation.system_prompt = st.text_area("System prompt", key="pg_system")
    conversation.temperature = st.slider("Temperature", 0.0, 2.0, 0.7, 0.1, key="pg_temperature")
    conversation.max_tokens = int(st.number_input("Max tokens", 1, 32768, 512, key="pg_max_tokens"))
    with_teacher = st.toggle(
        "Teacher beside",
        key="pg_teacher",
        help="The teacher answers the same messages at the same time (a paid call), with its "
        "cost and the similarity of the two answers.",
    )
    if with_teacher and (problem := chat.teacher_problem(settings)):
        st.error(inert(problem))
    st.subheader("Student server")
    for problem in report.problems:
        st.error(inert(problem))
    facts = pd.DataFrame(report.facts(), columns=["Fact", "Value"])
    st.dataframe(facts, hide_index=True, height=35 * len(facts) + 38)
    # a row that wraps: two columns cut "Clear chat" to "Clear …" at 1,024 px (issue 27)
    b1 = b2 = st.container(horizontal=True)
    if b1.button("Refresh", icon=":material/refresh:"):
        load_health.clear()
        st.rerun()
    if b2.button("Clear chat", icon=":material/delete:"):
        conversation.clear()
        st.rerun()

with talk:
    st.caption(
        "Chat with the student; its answers stream in. The teacher can answer the same prompt "
        "beside it. 'Save as pair' writes a turn to the shadow log."
    )
    if flash := st.session_state.pop("pg_flash", None):
        st.success(inert(flash))
    for i in range(len(conversation.turns)):
        playground_ui.show_turn(conversation, i, user=user, settings=settings)
    live = st.container()  # the new turn streams here, above the input box
    down = not report.reachable  # known down: no turn can succeed, so none is offered
    if down:
        st.caption("The student server is down (see Student server): start it, then press Refresh.")
    if prompt := st.chat_input("Message the student", disabled=down):
        live.chat_message("user").text(prompt)
        with live.chat_message("assistant"):
            cols = st.columns(2) if with_teacher else [st.container()]
            cols[0].text(f"Student · {conversation.model}")
            if with_teacher:
                cols[1].text(f"Teacher · {settings.teacher_model}")
            boxes = {"student": cols[0].empty(), "teacher": cols[-1].empty()}
            boxes["student"].caption("waiting for the first token…")
            try:
                chat.ask(
                    conversation, prompt, settings=own, student=backend,
                    with_teacher=with_teacher,
                    on_text=lambda who, text: boxes[who].text(text),
                )  # fmt: skip
            except ShadowTutorError as exc:
                st.error(inert(exc))
                st.stop()
        st.rerun()

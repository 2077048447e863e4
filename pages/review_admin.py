"""Review queue (admins): fill the queue from the shadow log, edit the tag taxonomy."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from shadowtutor import db, students
from shadowtutor.app import auth, deps, tag_editor
from shadowtutor.app.text import inert
from shadowtutor.errors import ShadowTutorError
from shadowtutor.log import analytics
from shadowtutor.review import progress, sampling, workflow

user = auth.guard("review-queue")
settings = deps.settings()
url = settings.db_url


@st.cache_data(ttl=30, show_spinner=False)
def student_names(db_url: str) -> list[str]:
    """The registered students (retired ones too: their pairs are still in the log)."""
    with db.session_scope(db_url) as s:
        return [r.name for r in students.list_students(session=s, include_retired=True)]


st.title("Review queue")
st.subheader("Fill the queue", divider="gray")
st.caption("Pairs already queued are never added again.")
today = sampling.today_utc()
# Enter in a field must not submit: "How many pairs" + Enter, then the button, added twice.
with st.form("fill", enter_to_submit=False):
    c1, c2, c3 = st.columns(3)
    strategy = c1.selectbox(
        "Strategy", sampling.STRATEGIES, format_func=lambda s: f"{s}: {sampling.STRATEGY_HELP[s]}"
    )
    size = c2.number_input("How many pairs", min_value=1, max_value=sampling.MAX_SIZE, value=50)
    required = c3.number_input(
        "Reviews per pair", min_value=1, max_value=20, value=settings.reviews_per_item
    )
    c4, c5, c6, c7 = st.columns(4)
    days = c4.date_input("Logged between (UTC)", value=(today - timedelta(days=30), today))
    source = c5.selectbox("Source", ["any", *sampling.SOURCES])
    language = c6.text_input("Language (empty: any)")
    category = c7.text_input("Category (empty: any)")
    names = student_names(url)
    c8, c9 = st.columns([1, 3])
    student = c8.selectbox(
        "Student", ["any", *names], help="Sample one student's answers (any: every student)."
    )
    seed = c9.number_input("Seed (same seed, same sample)", min_value=0, value=0)
    go = st.form_submit_button("Add to queue", type="primary")

if go:
    start, end = (days + (None, None))[:2] if isinstance(days, tuple) else (days, days)
    filters = sampling.Filters(
        start=start,
        end=end,
        source=None if source == "any" else source,
        language=language.strip() or None,
        category=category.strip() or None,
        student=None if student == "any" else student,
    )
    try:
        with db.session_scope(url) as s:
            picked, result = workflow.fill_queue(
                session=s,
                con=analytics.connect(settings.log_path),
                strategy=strategy,
                size=int(size),
                seed=int(seed),
                filters=filters,
                required_reviews=int(required),
                enqueued_by=user.id,
            )
    except ShadowTutorError as exc:
        st.error(inert(exc))
    else:
        if result.added:
            st.success(
                f"Added {result.added:,} pairs ({picked.candidates:,} candidates matched, "
                f"{result.already_queued:,} already queued)."
            )
        if picked.note:
            st.info(inert(picked.note[0].upper() + picked.note[1:] + "."))
        else:
            st.warning(
                f"No pairs added: {picked.candidates:,} candidates matched the filters and "
                "strategy. Widen the dates or filters, or pick another strategy."
            )

with db.session_scope(url) as s:
    prog = progress.progress(session=s)
c1, c2, c3 = st.columns(3)
c1.metric("Open items", f"{prog.queue_open:,}")
c2.metric("Done items", f"{prog.items_done:,}")
c3.metric("Reviews", f"{prog.reviews_total:,}")

st.subheader("Tag taxonomy", divider="gray")
tag_editor.show(url, user.id)

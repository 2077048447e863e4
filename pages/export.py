"""Export: reviewed pairs as fine-tuning data (admins only), with the history of exports."""

from __future__ import annotations

import streamlit as st

from shadowtutor import db
from shadowtutor.app import auth, deps
from shadowtutor.export import jobs as export

user = auth.guard("export")
url = deps.settings().db_url


@st.cache_data(ttl=60, show_spinner=False)
def filter_choices(db_url: str) -> dict[str, list[str]]:
    with db.session_scope(db_url) as session:
        return export.filter_choices(session=session)


@st.cache_data(ttl=15, show_spinner=False)
def count_matching(db_url: str, filters: dict) -> int:
    with db.session_scope(db_url) as session:
        filters_ = export.ExportFilters.from_dict(filters)
        return export.count_matching(session=session, filters=filters_)


st.title("Export training data")
st.caption(
    "Approved, reviewed pairs as SFT chat JSONL, preference JSONL and CSV; personal data "
    "scrubbed, split train / val / test by conversation. Same selection, same bytes."
)
choices = filter_choices(url)

c1, c2, c3, c4 = st.columns(4)
dates = c1.date_input("Pair days (UTC)", value=[], help="Empty: all days.")
languages = c2.multiselect("Languages", choices["languages"])
categories = c3.multiselect("Categories", choices["categories"])
sources = c4.multiselect("Sources", choices["sources"])
c1, c2, c3, c4 = st.columns(4)
agreement = c1.selectbox(
    "Reviewer agreement", list(export.AGREEMENTS), format_func=export.AGREEMENTS.get
)
min_score = c2.number_input("Min. student score", 1.0, 5.0, value=None, step=0.5)
required = c3.multiselect("Tags required", choices["tags"])
excluded = c4.multiselect("Tags excluded", choices["tags"])

with st.expander("Output options"):
    o1, o2, o3 = st.columns(3)
    formats = o1.multiselect("Formats", export.FORMATS, default=list(export.FORMATS))
    split = o2.text_input("Split train/val/test", "80/10/10")
    max_tokens = o3.number_input("Max tokens per example", 16, 200_000, 8192, step=1024)
    student_floor = o1.number_input(
        "Use the student's answer when it scored at least", 1.0, 5.0, value=None, step=0.5,
        help="Empty: the target is the reviewer's correction, else the teacher's answer.",
    )  # fmt: skip
    pref_max = o2.number_input("Student worse at or below score", 1.0, 5.0, 2.0, step=0.5)
    scrub = o3.toggle("Scrub personal data", value=True)
    system_prompt = st.text_area("System prompt for pairs without one", "")

try:
    days = tuple(dates) if dates else ()
    filters = export.ExportFilters(
        date_from=days[0] if days else None, date_to=days[-1] if days else None,
        languages=languages, categories=categories, sources=sources,
        min_student_score=min_score, tags_required=required, tags_excluded=excluded,
        agreement=agreement,
    )  # fmt: skip
    options = export.ExportOptions(
        formats=tuple(formats), split=export.parse_split(split), scrub_pii=scrub,
        student_target_min_score=student_floor, preference_max_student_score=pref_max,
        max_tokens=int(max_tokens), system_prompt=system_prompt,
    )  # fmt: skip
    filters.check()
    options.check()
    matching = count_matching(url, filters.to_dict())
except export.ExportError as exc:
    st.error(str(exc))
    st.stop()

st.metric("Matching reviewed pairs", f"{matching:,}")
if not scrub:
    st.warning("Personal data will NOT be scrubbed from this export.")
if st.button("Export", type="primary", icon=":material/download:", disabled=matching == 0):
    try:
        with db.session_scope(url) as session:  # run_export refuses non-admins itself
            result = export.run_export(
                session=session, actor_id=user.id, export_root=deps.settings().export_path,
                filters=filters, options=options,
            )  # fmt: skip
        st.session_state["export_job"] = result.job_id
        st.success(f"Export {result.export_id} written to {result.path}")
    except export.ExportError as exc:
        st.error(str(exc))

st.subheader("History")
with db.session_scope(url) as session:
    jobs = export.list_jobs(session=session)
if not jobs:
    st.info("No exports yet.")
    st.stop()
st.dataframe(jobs, hide_index=True, column_order=(
    "id", "created_at", "created_by", "examples", "train", "val", "test", "available", "path",
))  # fmt: skip
st.subheader("Report and files")
labels = {j["id"]: f"#{j['id']} · {j['created_at']:%Y-%m-%d %H:%M} UTC · {j['created_by']}"
          for j in jobs}  # fmt: skip
ids = list(labels)
last = st.session_state.get("export_job")
chosen = st.selectbox("Export", ids, index=ids.index(last) if last in ids else 0,
                      format_func=labels.get)  # fmt: skip
try:
    with db.session_scope(url) as session:
        report = export.job_report(session=session, job_id=chosen)
        files = export.job_files(session=session, job_id=chosen)
except export.ExportError as exc:
    st.error(str(exc))
    st.stop()
r1, r2, r3 = st.columns(3)
r1.dataframe(report["splits"], hide_index=True)
r2.dataframe(report["dropped"], hide_index=True)
r3.dataframe(report["pii"], hide_index=True)
cols = st.columns(4)  # files are read only when a button is clicked (large exports)
for i, path in enumerate(files):
    cols[i % 4].download_button(
        path.name, path.read_bytes, file_name=path.name, key=f"dl-{chosen}-{path.name}",
        icon=":material/download:", on_click="ignore",
    )  # fmt: skip

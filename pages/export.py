"""Export: reviewed pairs as fine-tuning data (admins only), with the history of exports."""

from __future__ import annotations

import streamlit as st

from shadowtutor import db
from shadowtutor.app import auth, deps, export_checks
from shadowtutor.app.text import inert
from shadowtutor.config import shown_path
from shadowtutor.export import jobs

user = auth.guard("export")
settings = deps.settings()
url = settings.db_url


@st.cache_data(ttl=60, show_spinner=False)
def filter_choices(db_url: str) -> dict[str, list[str]]:
    with db.session_scope(db_url) as session:
        return jobs.filter_choices(session=session)


@st.cache_data(ttl=15, show_spinner="Counting what the export will write…")
def preview(db_url: str, filters: dict, _options: jobs.ExportOptions, options_key: str) -> dict:
    with db.session_scope(db_url) as session:
        filters_ = jobs.ExportFilters.from_dict(filters)
        return jobs.preview(session=session, filters=filters_, options=_options)


DROP_NAMES = {"duplicate": "duplicates", "empty": "empty", "too_long": "too long",
              "invalid_chat": "invalid chats"}  # fmt: skip
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
    "Reviewer agreement", list(jobs.AGREEMENTS), format_func=jobs.AGREEMENTS.get
)
min_score = c2.number_input("Min. student score", 1.0, 5.0, value=None, step=0.5)
required = c3.multiselect("Tags required", choices["tags"])
excluded = c4.multiselect("Tags excluded", choices["tags"])
if len(choices["students"]) > 1:  # several students: whose reviewed answers to export
    students = st.multiselect("Students", choices["students"], help="Empty: every student.")
else:
    students = []

with st.expander("Output options"):
    o1, o2, o3 = st.columns(3)
    formats = o1.multiselect("Formats", jobs.FORMATS, default=list(jobs.FORMATS))
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
    filters = jobs.ExportFilters(
        date_from=days[0] if days else None, date_to=days[-1] if days else None,
        languages=languages, categories=categories, sources=sources,
        min_student_score=min_score, tags_required=required, tags_excluded=excluded,
        agreement=agreement, students=tuple(students),
    )  # fmt: skip
    options = jobs.ExportOptions(
        formats=tuple(formats), split=jobs.parse_split(split), scrub_pii=scrub,
        student_target_min_score=student_floor, preference_max_student_score=pref_max,
        max_tokens=int(max_tokens), system_prompt=system_prompt,
    )  # fmt: skip
    filters.check()
    options.check()
    counts = preview(url, filters.to_dict(), options, repr(options))
except jobs.ExportError as exc:
    st.error(inert(exc))
    st.stop()

matching, writes = counts["matched"], counts["examples"]
p = st.columns(4)
p[0].metric("Matching reviewed pairs", f"{matching:,}")
p[1].metric("Examples it will write", f"{writes:,}")
p[2].metric(
    "Train / val / test", " / ".join(f"{counts['per_split'].get(s, 0):,}" for s in jobs.SPLITS)
)
prefs = counts.get("preference_pairs") or {}
if prefs:
    p[3].metric("Preference pairs",  # a longer label was cut to "…" at 1,024 px
                " / ".join(f"{prefs.get(s, 0):,}" for s in jobs.SPLITS),
                help="train / val / test, as the splits next to it")  # fmt: skip
dropped = {k: v for k, v in counts["dropped"].items() if v}
if dropped:
    st.caption(
        "Left out before writing: "
        + ", ".join(f"{v:,} {DROP_NAMES.get(k, k)}" for k, v in dropped.items())
        + " (a duplicate is the same prompt and target as an earlier pair)."
    )
export_checks.show(counts)
empty = [f"preference_{s}.jsonl" for s in jobs.SPLITS if prefs and not prefs.get(s)]
if empty:
    st.warning(
        f"{', '.join(empty)} will be empty: no pair in that split has a student answer scored "
        "at or below the 'Student worse' threshold (Output options)."
    )
if not scrub:
    st.warning("Personal data will NOT be scrubbed from this export.")
if st.button("Export", type="primary", icon=":material/download:", disabled=matching == 0):
    try:
        with db.session_scope(url) as session:  # run_export refuses non-admins itself
            result = jobs.run_export(
                session=session, actor_id=user.id, export_root=settings.export_path,
                filters=filters, options=options,
            )  # fmt: skip
        st.session_state["export_job"] = result.job_id
        where = shown_path(result.path, settings.home_path)
        st.success(f"Export {result.export_id} written to {where} (in the home folder)")
    except jobs.ExportError as exc:
        st.error(inert(exc))

st.subheader("History")
with db.session_scope(url) as session:
    history = jobs.list_jobs(session=session)
if not history:
    st.info("No exports yet.")
    st.stop()
for job in history:  # a folder name relative to the home folder, not a machine path
    job["folder"] = shown_path(job["path"], settings.home_path)
st.dataframe(history, hide_index=True, column_order=(
    "id", "created_at", "created_by", "examples", "train", "val", "test", "available", "folder",
), column_config={
    "created_at": st.column_config.DatetimeColumn("Created (UTC)", format="YYYY-MM-DD HH:mm"),
    "created_by": "By", "examples": st.column_config.NumberColumn("Examples", format="localized"),
    "available": st.column_config.CheckboxColumn("Files kept"), "folder": "Folder",
})  # fmt: skip
st.subheader("Report and files")
labels = {j["id"]: f"#{j['id']} · {j['created_at']:%Y-%m-%d %H:%M} UTC · {j['created_by']}"
          for j in history}  # fmt: skip
ids = list(labels)
last = st.session_state.get("export_job")
chosen = st.selectbox("Export", ids, index=ids.index(last) if last in ids else 0,
                      format_func=labels.get)  # fmt: skip
try:
    with db.session_scope(url) as session:
        report = jobs.job_report(session=session, job_id=chosen)
        files = jobs.job_files(session=session, job_id=chosen)
except jobs.ExportError as exc:
    st.error(inert(exc))
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

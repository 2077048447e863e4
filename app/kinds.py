"""The pages' sections by kind of request (plain, tools, json_object, json_schema, images):
Quality's table and chart of the student per kind, Readiness's decision and criteria per
category and kind. Each is one call from its page; the figures come from
:mod:`shadowtutor.views.kinds`. Category names come from the log: shown in dataframes
(text), never as Markdown."""

from __future__ import annotations

import duckdb
import streamlit as st

from shadowtutor.app import criteria_ui, filters
from shadowtutor.log.analytics import Filters
from shadowtutor.views import kinds
from shadowtutor.views.readiness import View


def quality_section(con: duckdb.DuckDBPyConnection, f: Filters, method: str | None) -> None:
    """Quality: how the student does on each kind of request in the selection."""
    st.subheader("By kind of request")
    df = kinds.quality_by_kind(con, f, method)
    if df.empty:
        st.info("No pairs in this selection.")
        return
    help_of = st.column_config.Column
    st.dataframe(
        kinds.quality_table(df),
        hide_index=True,
        width="stretch",
        column_config={name: help_of(help=text) for name, text in kinds.COLUMN_HELP.items()},
    )
    filters.chart(
        kinds.outcome_counts(df),
        kinds.outcome_figure,
        name="student_by_kind",
        empty="The student has not been asked in this selection.",
    )
    st.caption(
        "Tool calls agree when both answers call the same functions with JSON-equal arguments; "
        "JSON is valid when it parses and fits the request's schema. A student whose server "
        "refused the request's feature (tools, a schema, images) is counted apart as "
        "unsupported, not as a failure, here and in the gate. Similarity: text answers, of the "
        "method chosen above."
    )


def readiness_section(view: View) -> None:
    """Readiness: each (category, kind)'s decision and whether the student serves it, and
    the criteria of the kinds other than plain."""
    st.subheader("By kind of request")
    evidence = view.evidence
    table = kinds.decision_frame(evidence, view.state)
    if table.empty:
        st.info("No decision yet: evaluate the gate first.")
        return
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={  # the whole table at 1,024 px
            "Category": {"width": 80},
            "Kind": {"width": 95},
            "What it asks": {"width": 230},
            "Status": {"width": 96},
            "Decision": {"width": 80},
            "Student serves it": {"width": 150},
        },
    )
    st.caption(
        "Each kind of request has its own GO: the student serves a kind in a category only "
        "when that kind's criteria pass and an admin approved the decision; any other request "
        "goes to the teacher, counted by reason. Tool requests are gated on tool-call "
        "agreement and JSON requests on schema validity (besides pairs, P95 and success)."
    )
    rows = kinds.criteria_frame(evidence)
    if rows.empty:
        st.text("No request of a kind other than plain in this evidence.")
        return
    criteria_ui.show(
        rows, kinds.criteria_notes(evidence), kinds.other(evidence), "kinds", kind_column=True
    )

"""The gate's criteria on a page: the short table, then what is missing and what the judge
saved in lines that wrap, and each method in full behind an expander (the table's columns
all show at 1,024 px; issue 27 item 8)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from shadowtutor.views import criteria_table

ROW_PX = 35


def show(
    frame: pd.DataFrame,
    notes: list[str],
    criteria: list[dict[str, Any]],
    key: str,
    *,
    kind_column: bool = False,
) -> None:
    """``frame`` from :func:`criteria_table.frame`, ``notes`` the lines under it; values from
    the log (category names) go out as text, never Markdown."""
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height=ROW_PX * (len(frame) + 1) + 3,
        column_config=criteria_table.column_config(kind_column=kind_column),  # type: ignore[arg-type]
        key=f"{key}-table",
    )
    if notes:
        st.text("\n".join(notes))
    if methods := criteria_table.method_lines(criteria):
        with st.expander("How each bound is computed (CS: confidence sequence)"):
            st.text("\n".join(methods))

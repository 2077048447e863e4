"""The Quality page's section on users' feedback (thumbs down and regenerates per day, by
who served the answer)."""

from __future__ import annotations

import duckdb
import pandas as pd
import streamlit as st

from shadowtutor.app import filters
from shadowtutor.log.analytics import Filters
from shadowtutor.log.errors import LogReadError
from shadowtutor.views import feedback

TTL_S = 60


# Every answer of the period read into pandas: about a third of a Quality run on the demo
# (issue 27 item 11), so a visit within the minute reuses it. ``log`` names the log.
@st.cache_data(ttl=TTL_S, show_spinner=False)
def _by_day(
    log: str, selection: str, tz: str, _con: duckdb.DuckDBPyConnection, _f: Filters
) -> pd.DataFrame:
    return feedback.by_day(_con, _f, tz)


def quality_section(con: duckdb.DuckDBPyConnection, f: Filters, tz: str, log: str) -> None:
    """The section, for the log at ``log`` (its path: the key of a minute's reuse)."""
    st.subheader("Users' feedback")
    try:
        df = _by_day(log, repr(f), tz, con, f)
    except LogReadError as exc:
        st.error(str(exc))
        return
    filters.chart(
        df,
        feedback.figure,
        name="feedback_by_day",
        empty="No answer in this selection has users' feedback yet (an app sends it with "
        "POST /v1/feedback on the proxy or collector.feedback(...) in the wrapper; "
        "regenerates are recorded from the traffic).",
    )
    if df.attrs.get("categories"):
        st.text(
            "Categories compared (those the student served): " + ", ".join(df.attrs["categories"])
        )
    st.caption(
        f"Each day shows the week up to it (a side's week with fewer than {feedback.MIN_COUNT} "
        "rated answers, or answers, has no point). Thumbs down: the share of rated answers "
        "whose latest thumbs is down. Regenerated: the share of answers the conversation "
        "asked again within the regenerate window. Each side is the answers it served (after "
        f"a GO the student serves its share of the users). Read again every {TTL_S} s."
    )

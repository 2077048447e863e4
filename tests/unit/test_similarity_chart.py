"""The Quality page's "Similarity per day" chart (issue 27 item 12): similarity scores and the
share above the threshold on two labelled axes, and today's partial day not drawn as a dip."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from shadowtutor.views import charts

TODAY = date(2026, 12, 7)


def _days(n: int) -> pd.DataFrame:
    days = [TODAY - timedelta(days=n - 1 - i) for i in range(n)]
    return pd.DataFrame(
        {
            "day": pd.to_datetime(days),  # as DuckDB gives them: datetime64
            "pairs": [100] * (n - 1) + [7],
            "mean": [0.7] * (n - 1) + [0.3],
            "p10": [0.4] * (n - 1) + [0.1],
            "median": [0.72] * (n - 1) + [0.3],
            "share_above": [0.5] * (n - 1) + [0.1],
        }
    )


def test_similarity_and_the_share_have_their_own_labelled_axes() -> None:
    fig = charts.similarity_trend(_days(5), 0.8, partial_day=TODAY)
    assert "similarity" in fig.layout.yaxis.title.text
    assert "share" in fig.layout.yaxis2.title.text and fig.layout.yaxis2.tickformat == ".0%"
    share = next(t for t in fig.data if t.name.startswith("share"))
    assert share.yaxis == "y2"
    assert all(t.yaxis in (None, "y") for t in fig.data if not t.name.startswith("share"))


def test_the_partial_current_day_is_marked_not_joined_to_the_lines() -> None:
    fig = charts.similarity_trend(_days(5), 0.8, partial_day=TODAY)
    lines = [t for t in fig.data if t.mode != "markers"]
    assert lines and all(TODAY not in pd.to_datetime(t.x).date for t in lines)
    (today,) = [t for t in fig.data if t.mode == "markers"]
    assert list(pd.to_datetime(today.x).date) == [TODAY] and "so far" in today.name
    whole = charts.similarity_trend(_days(5), 0.8, partial_day=TODAY + timedelta(days=1))
    assert all(t.mode != "markers" for t in whole.data)  # no partial day in the data

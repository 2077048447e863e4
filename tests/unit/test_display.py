"""Table cells as people read them (issue 14 item 10: raw None in tables)."""

from __future__ import annotations

import math

import pandas as pd

from shadowtutor.views import display


def test_missing_values_become_a_dash_or_a_word_and_numbers_are_formatted() -> None:
    raw = pd.DataFrame(
        {
            "model": ["teacher", "student"],
            "p50_ms": [1213.4, None],  # no successful student call under a filter
            "kappa": [float("nan"), 0.4567],
            "requests": [4377, 12],
        }
    )
    assert display.still_raw(raw) == ["p50_ms", "kappa"]
    shown = display.formatted(
        raw, {"p50_ms": "{:,.0f}", "kappa": "{:.2f}", "requests": "{:,}"}, missing={"kappa": "n/a"}
    )
    assert shown["p50_ms"].tolist() == ["1,213", "—"]
    assert shown["kappa"].tolist() == ["n/a", "0.46"]
    assert shown["requests"].tolist() == ["4,377", "12"]
    assert display.still_raw(shown) == []
    assert math.isnan(raw["kappa"].iloc[0])  # the raw frame (CSV downloads) is left alone


def test_rows_of_dicts_and_absent_columns() -> None:
    shown = display.formatted([{"a": None, "b": 1}], {"a": "{}", "zzz": "{}"})
    assert shown.to_dict("records") == [{"a": "—", "b": 1}]
    assert display.cell(pd.NA) == display.cell(None) == "—"


def test_similarity_histogram_threshold_label_sits_above_the_bars() -> None:
    """Issue 14 item 10 (clipped chart labels): the label sat inside the plot, over the tallest
    bars next to the threshold."""
    from shadowtutor.views import charts

    bins = pd.DataFrame({"bin_start": [0.7, 0.8, 0.9], "bin_end": [0.8, 0.9, 1.0],
                         "pairs": [10, 200, 400]})  # fmt: skip
    fig = charts.similarity_histogram(bins, "lexical", 0.8)
    (label,) = fig.layout.annotations
    assert label.text == "threshold 0.80" and label.yref == "paper" and label.y >= 1
    assert label.xanchor == "right"  # leaning away from the tall bars near 1
    assert fig.layout.margin.t >= 60

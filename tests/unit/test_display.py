"""Table cells as people read them (issue 14 item 10: raw None in tables)."""

from __future__ import annotations

import math

import pandas as pd

from shadowtutor.dashboards import display


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

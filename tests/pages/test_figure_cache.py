"""filters.plot: a page's figure is built once per function and data (issue 27 item 11: the
figures' building was two thirds of a chart page's warm run), never confused between data,
and a lambda (a new function every run, so no key) is refused."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from shadowtutor.app import filters

BUILT: list[tuple[int, str]] = []


def bars(df: pd.DataFrame, title: str) -> go.Figure:
    BUILT.append((len(df), title))
    return go.Figure(go.Bar(x=df["day"], y=df["n"]), layout={"title": title})


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"day": [f"2026-12-{d + 1:02d}" for d in range(n)], "n": range(n)})


def test_a_figure_is_built_once_per_data_and_never_confused() -> None:
    BUILT.clear()
    filters._figure.clear()
    filters.plot(bars, frame(3), "spend")
    filters.plot(bars, frame(3), "spend")  # a rerun: the same data, built equal
    assert BUILT == [(3, "spend")]
    filters.plot(bars, frame(4), "spend")  # new data
    filters.plot(bars, frame(3), "other")  # another argument
    changed = frame(3)
    changed.loc[2, "n"] = 99  # one value differs: a new figure, not the cached one
    filters.plot(bars, changed, "spend")
    assert BUILT == [(3, "spend"), (4, "spend"), (3, "other"), (3, "spend")]


def test_a_lambda_is_refused() -> None:
    with pytest.raises(TypeError, match="module-level function"):
        filters.plot(lambda df: bars(df, "x"), frame(2))

"""Table cells as people read them: formatted numbers, and a word or a dash where a value is
missing, never a raw ``None`` or ``nan`` (Streamlit's table shows both as grey "None").

The raw frame stays what the CSV download and the tests read; only the copy shown on the page
goes through :func:`formatted`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

MISSING = "—"


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def cell(value: Any, fmt: str = "{}", missing: str = MISSING) -> str:
    """``fmt.format(value)``, or ``missing`` for None / NaN."""
    return missing if is_missing(value) else fmt.format(value)


def formatted(
    table: pd.DataFrame | Iterable[Mapping[str, Any]],
    formats: Mapping[str, str],
    *,
    missing: Mapping[str, str] | str = MISSING,
) -> pd.DataFrame:
    """A copy of ``table`` with the columns in ``formats`` as text (``"{:,.0f}"`` etc.) and
    missing values as ``missing`` (one text, or one per column: e.g. "n/a" for a kappa that
    is undefined). Columns not named stay as they are."""
    out = (table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table))).copy()
    for column, fmt in formats.items():
        if column in out.columns:
            gap = missing if isinstance(missing, str) else missing.get(column, MISSING)
            out[column] = [cell(v, fmt, gap) for v in out[column].tolist()]
    return out


def still_raw(table: pd.DataFrame) -> list[str]:
    """Columns of a table about to be shown that still hold None / NaN (tests use it)."""
    return [c for c in table.columns if any(is_missing(v) for v in table[c].tolist())]


def moment(value: Any, tz: Any = None) -> str:
    """A time as the app writes times, "2026-12-07 01:31 UTC", in ``tz`` (a ``ZoneInfo``;
    None: UTC), from a datetime or an ISO text such as the log's "2026-12-04T01:43:59.290Z"
    (which the Review page once showed raw). Missing: "n/a"; not a time: the text as it is."""
    from datetime import UTC, datetime

    if is_missing(value) or value == "":
        return "n/a"
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(when, datetime):
        return str(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(tz or UTC).strftime("%Y-%m-%d %H:%M %Z")

"""Shared dashboard widgets: the one filter bar that drives every chart on a page, a chart
block that says why it is empty or shows the figure with its data as a CSV download, and
``plot``, the way every page draws a Plotly figure (built once per function and data)."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from shadowtutor.app.text import inert
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError
from shadowtutor.log import analytics

PERIODS = {"Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90, "All": None, "Custom": -1}


def local_now(tz: str) -> datetime:
    """The current time in the display time zone, naive (as ``facts.lts`` is)."""
    return datetime.now(UTC).astimezone(analytics.zone(tz)).replace(tzinfo=None)


def connect_or_stop(settings: Settings):  # noqa: ANN201
    """The analytics connection for the page, or a message naming what to fix (an unreadable
    log file, an unknown time zone) and the page stops."""
    try:
        return analytics.connect(
            settings.log_path, settings.timezone, cache_dir=settings.home_path / "cache"
        )
    except ShadowTutorError as exc:
        st.error(inert(exc))
        st.stop()


def selection(con, key: str, tz: str) -> analytics.Filters:  # noqa: ANN001
    """The filter bar's selection; the page stops with a message when the log is empty or
    nothing matches."""
    f = filter_bar(con, key, tz)
    if f is None:
        st.stop()
    if analytics.count_pairs(con, f) == 0:
        st.info("No pairs match these filters; widen the period or clear a filter.")
        st.stop()
    return f


def filter_bar(con, key: str, tz: str) -> analytics.Filters | None:  # noqa: ANN001
    """Period, model, category, language and source. None (with a message) when the log is
    empty, so the page can stop instead of drawing blank charts."""
    opts = analytics.filter_options(con)
    if opts.pairs == 0:
        st.info(
            "The shadow log is empty, so there is nothing to chart yet. Collect pairs with the "
            "collector or proxy, import a file with `shadowtutor logs import FILE`, or load demo "
            "data with `shadowtutor demo`."
        )
        return None
    today = local_now(tz).date()
    # Two rows of three: in one row of six, a chosen value's pill in a 110 px column showed as
    # an empty blue stub (issue 14 item 10); each filter now has room for two or three pills.
    c = [*st.columns([1, 1.3, 1.5]), *st.columns(3)]
    period = c[0].selectbox("Period", list(PERIODS), index=1, key=f"{key}-period")
    start, end = _period(period, today, opts, c[1], key)
    models = c[2].multiselect("Model", opts.models, key=f"{key}-models")
    categories = c[3].multiselect("Category", opts.categories, key=f"{key}-categories")
    languages = c[4].multiselect("Language", opts.languages, key=f"{key}-languages")
    sources = c[5].multiselect("Source", opts.sources, key=f"{key}-sources")
    student = None
    if len(opts.students) > 1:  # several students: each request once, or one student's view
        every = "each request once (its primary record)"
        picked = st.selectbox("Student", [every, *opts.students], key=f"{key}-student")
        student = None if picked == every else picked
    st.caption(
        f"Times in {tz}. The log holds {opts.pairs:,} pairs from {opts.first_day} to "
        f"{opts.last_day}. A model filter matches a pair whose teacher or student is that model."
    )
    return analytics.Filters(
        start=start,
        end=end,
        models=tuple(models),
        categories=tuple(categories),
        languages=tuple(languages),
        sources=tuple(sources),
        student=student,
    )


def _period(period: str, today: date, opts: analytics.FilterOptions, slot, key: str):  # noqa: ANN001, ANN202
    days = PERIODS[period]
    if days == -1:
        picked = slot.date_input(
            "Dates",
            value=(max(opts.first_day, today - timedelta(days=29)), today),
            key=f"{key}-dates",
        )
        if isinstance(picked, tuple | list):
            return (picked[0], picked[1]) if len(picked) == 2 else (picked[0], picked[0])
        return picked, picked
    if days is None:
        slot.text_input("Dates", f"{opts.first_day} to {opts.last_day}", disabled=True)
        return None, None
    start = today - timedelta(days=days - 1)
    slot.text_input("Dates", f"{start} to {today}", disabled=True, key=f"{key}-dates-shown")
    return start, today


def chart(
    df: pd.DataFrame,
    figure: Callable[..., go.Figure],
    *args: object,
    name: str,
    empty: str,
) -> None:
    """A chart of ``figure(df, *args)`` and its data as CSV, or ``empty`` as a message when
    there is no data."""
    if df.empty:
        st.info(empty)
        return
    plot(figure, df, *args, key=f"chart-{name}")
    download(df, name)


def plot(build: Callable[..., go.Figure], *args: object, key: str | None = None) -> None:
    """``st.plotly_chart(build(*args))``, the figure built once per ``build`` and arguments
    and kept ten minutes, for every session: a rerun, or a revisit of the page with the same
    data, sends it again without building it (plotly express and its validation were most of
    a chart page's server time). ``build`` is a module's function (its name is part of the
    key: a lambda or a function made in a page would be a new one every run). The arguments
    are keyed by their pickle (0.06 ms for a 60-day frame, where Streamlit's own hashing of a
    frame takes 1 ms); equal bytes are equal data, and the rare equal frames that pickle
    differently only cost a rebuild."""
    name = f"{build.__module__}.{build.__qualname__}"
    if "<" in name:
        raise TypeError(f"plot() needs a module-level function, not {name}")
    try:
        digest = hashlib.blake2b(pickle.dumps(args, protocol=5), digest_size=20).hexdigest()
    except (pickle.PicklingError, TypeError, AttributeError):  # not picklable: built each run
        figure = build(*args)
    else:
        figure = _figure(build, name, digest, args)
    st.plotly_chart(figure, key=key, width="stretch")


@st.cache_resource(ttl=600, max_entries=256, show_spinner=False)
def _figure(
    _build: Callable[..., go.Figure], name: str, digest: str, _args: tuple[object, ...]
) -> go.Figure:
    # The same object for every session: st.plotly_chart only reads it (Figure.to_dict copies).
    return _build(*_args)


def download(df: pd.DataFrame, name: str) -> None:
    st.download_button(
        "Download CSV",
        lambda: df.to_csv(index=False).encode(),  # made on the click, not on every run
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv-{name}",
        on_click="ignore",
        icon=":material/download:",
    )

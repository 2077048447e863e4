"""Teacher spend queries for the Cost page (DuckDB over the ``facts`` table).

Every function is a fixed SQL text with the page's filters bound as parameters; the maths on
top (projection, budget alerts, savings) is in :mod:`shadowtutor.dashboards.budget`.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from shadowtutor.log import schema
from shadowtutor.log.analytics import WHERE, Filters, query
from shadowtutor.log.storage import JSONL_SUFFIXES
from shadowtutor.pricing import PriceTable

# The dimensions spend can be broken down by: a fixed map, so no column name comes from input.
DIMENSIONS = {
    "model": "teacher_model",
    "category": "category",
    "language": "language",
    "source": "source",
}


def spend_by_day(con: duckdb.DuckDBPyConnection, f: Filters) -> pd.DataFrame:
    """day, teacher_usd, student_usd, pairs, priced (pairs with a teacher cost)."""
    return query(
        con,
        f"""
        SELECT lts::DATE AS day, coalesce(sum(teacher_cost_usd), 0) AS teacher_usd,
          coalesce(sum(student_cost_usd), 0) AS student_usd, count(*) AS pairs,
          count(teacher_cost_usd) AS priced
        FROM facts WHERE {WHERE} GROUP BY 1 ORDER BY 1
        """,
        f,
    )


def spend_by_hour(con: duckdb.DuckDBPyConnection, f: Filters) -> pd.DataFrame:
    """hour (local), teacher_usd, pairs."""
    return query(
        con,
        f"""
        SELECT date_trunc('hour', lts) AS hour, coalesce(sum(teacher_cost_usd), 0) AS teacher_usd,
          count(*) AS pairs
        FROM facts WHERE {WHERE} GROUP BY 1 ORDER BY 1
        """,
        f,
    )


def spend_heatmap(con: duckdb.DuckDBPyConnection, f: Filters) -> pd.DataFrame:
    """weekday (1 = Monday), hour (0-23, local), teacher_usd, pairs."""
    return query(
        con,
        f"""
        SELECT isodow(lts) AS weekday, hour(lts) AS hour,
          coalesce(sum(teacher_cost_usd), 0) AS teacher_usd, count(*) AS pairs
        FROM facts WHERE {WHERE} GROUP BY 1, 2 ORDER BY 1, 2
        """,
        f,
    )


_SPEND_BY = {
    column: f"""
        SELECT {column} AS value, coalesce(sum(teacher_cost_usd), 0) AS teacher_usd,
          count(*) AS pairs, count(teacher_cost_usd) AS priced
        FROM facts WHERE {WHERE} GROUP BY 1 ORDER BY 2 DESC, 1
    """
    for column in DIMENSIONS.values()
}


def spend_by(con: duckdb.DuckDBPyConnection, f: Filters, dimension: str) -> pd.DataFrame:
    """value, teacher_usd, pairs, priced, share (of the filtered spend) per ``dimension``:
    one of model, category, language, source."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension must be one of {', '.join(DIMENSIONS)}, not {dimension!r}")
    df = query(con, _SPEND_BY[DIMENSIONS[dimension]], f)
    total = df["teacher_usd"].sum()
    df["share"] = df["teacher_usd"] / total if total else 0.0
    return df


# Column titles of the "Most expensive prompts" table (the frame keeps its query names).
TOP_PROMPT_LABELS = {
    "ts": "Time",
    "teacher_model": "Teacher model",
    "category": "Category",
    "language": "Language",
    "teacher_usd": "Teacher USD",
    "prompt_tokens": "Prompt tokens",
    "completion_tokens": "Completion tokens",
    "prompt": "Prompt",
}


def top_prompts(con: duckdb.DuckDBPyConnection, f: Filters, limit: int = 20) -> pd.DataFrame:
    """The most expensive pairs: ts, teacher_model, category, language, teacher_usd, tokens,
    prompt (the last user message, read back from the log files of just these pairs)."""
    df = query(
        con,
        f"""
        SELECT top.* EXCLUDE (file_hash), log_files.path AS _file FROM (
          SELECT id, _file AS file_hash, lts AS ts, teacher_model, category, language,
            teacher_cost_usd AS teacher_usd, teacher_prompt_tokens AS prompt_tokens,
            teacher_completion_tokens AS completion_tokens
          FROM facts WHERE {WHERE} AND teacher_cost_usd IS NOT NULL
          ORDER BY teacher_cost_usd DESC, id LIMIT $limit
        ) AS top LEFT JOIN log_files ON log_files._file = top.file_hash
        ORDER BY teacher_usd DESC, id
        """,
        f,
        limit=int(limit),
    )
    prompts = _prompts(con, df)
    df["prompt"] = [prompts.get(i, "") for i in df["id"]]
    return df.drop(columns=["_file"])


# Prompt texts already read back, by pair id (a record never changes, so this cannot go stale).
_PROMPTS: OrderedDict[str, str] = OrderedDict()
_PROMPTS_MAX = 5000
_PROMPTS_LOCK = threading.Lock()


def _prompts(con: duckdb.DuckDBPyConnection, df: pd.DataFrame) -> dict[str, str]:
    """id -> prompt text for the given rows, reading only the files those rows came from."""
    with _PROMPTS_LOCK:
        out = {i: _PROMPTS[i] for i in df["id"] if i in _PROMPTS}
    todo = df[~df["id"].isin(list(out))]
    if todo.empty:
        return out
    read = _read_prompts(con, todo)
    with _PROMPTS_LOCK:
        _PROMPTS.update(read)
        while len(_PROMPTS) > _PROMPTS_MAX:
            _PROMPTS.popitem(last=False)
    return out | read


def _read_prompts(con: duckdb.DuckDBPyConnection, df: pd.DataFrame) -> dict[str, str]:
    ids = df["id"].tolist()
    out: dict[str, str] = {}
    files = {f for f in df["_file"] if isinstance(f, str)}
    jsonl = sorted(f for f in files if f.endswith(JSONL_SUFFIXES))
    parquet = sorted(f for f in files if f.endswith(".parquet"))
    readers = []
    if jsonl:
        readers.append(
            "read_json($jsonl, format='newline_delimited', ignore_errors=true, "
            "maximum_object_size=67108864, columns={'id': 'VARCHAR', 'messages': 'JSON'})"
        )
    if parquet:
        readers.append("read_parquet($parquet)")
    for reader in readers:
        params = {"ids": ids}
        if "$jsonl" in reader:
            params["jsonl"] = jsonl
        else:
            params["parquet"] = parquet
        rows = con.execute(
            f"SELECT id, CAST(messages AS VARCHAR) FROM {reader} WHERE list_contains($ids, id)",
            params,
        ).fetchall()
        for pair_id, messages in rows:
            try:
                out[pair_id] = schema.prompt_text(json.loads(messages))
            except (TypeError, ValueError):
                out[pair_id] = ""
    return out


def cost_coverage(con: duckdb.DuckDBPyConnection, f: Filters, prices: PriceTable) -> pd.DataFrame:
    """Teacher models of pairs with no cost: teacher_model, pairs, missing, in_price_table.
    A teacher that did not answer (an error, or not asked in the Playground) costs nothing
    and is not counted as missing.

    A missing cost is either an unknown model (not in the price table) or a known model whose
    call reported no token usage."""
    df = query(
        con,
        f"""
        SELECT teacher_model, count(*) AS pairs,
          count(*) FILTER (WHERE teacher_cost_usd IS NULL AND NOT teacher_failed) AS missing
        FROM facts WHERE {WHERE} GROUP BY 1 HAVING missing > 0 ORDER BY missing DESC, 1
        """,
        f,
    )
    df["in_price_table"] = [prices.lookup(m) is not None for m in df["teacher_model"]]
    return df


@dataclass(frozen=True)
class SpendWindows:
    """Unfiltered teacher spend around ``now`` (local time), for the budget and projection."""

    today: float
    month_to_date: float
    trailing_7d: float
    first_pair: datetime | None  # local time of the oldest pair in the log
    pairs: int = 0  # pairs this month or in the trailing 7 days
    priced: int = 0  # ... of which have a teacher cost

    @property
    def unknown(self) -> bool:
        """Pairs but not one with a cost (a self-hosted teacher with no price): the spend is
        unknown, not $0."""
        return self.pairs > 0 and self.priced == 0


def spend_windows(con: duckdb.DuckDBPyConnection, now: datetime) -> SpendWindows:
    """``now`` is naive local time (the same zone as ``facts.lts``)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    row = con.execute(
        """
        SELECT coalesce(sum(teacher_cost_usd) FILTER (WHERE lts >= $day), 0),
          coalesce(sum(teacher_cost_usd) FILTER (WHERE lts >= $month), 0),
          coalesce(sum(teacher_cost_usd) FILTER (WHERE lts > $week), 0),
          min(lts),
          count(*) FILTER (WHERE (lts >= $month OR lts > $week) AND NOT teacher_failed),
          count(teacher_cost_usd) FILTER (WHERE lts >= $month OR lts > $week)
        FROM facts WHERE lts <= $now AND is_primary
        """,
        {"day": day, "month": day.replace(day=1), "week": now - timedelta(days=7), "now": now},
    ).fetchone()
    return SpendWindows(
        float(row[0]), float(row[1]), float(row[2]), row[3], int(row[4]), int(row[5])
    )


def unknown_spend_message(coverage: pd.DataFrame) -> str:
    """Why the spend is unknown and how to fix it (every pair of the period lacks a cost)."""
    models = ", ".join(coverage["teacher_model"].astype(str).tolist()) or "the teacher"
    return (
        f"Spend unknown: no pair has a teacher cost (teacher model: {models}). A self-hosted "
        "teacher (llama.cpp, vLLM, Ollama) has no price until you give it one: add the model "
        "to a price table (per-token prices, 0 for a machine you own) and point "
        "SHADOWTUTOR_PRICE_TABLE at it; see 'Pricing a self-hosted model' in the README. A "
        "replayed OpenAI export logged as 'unknown' needs `shadowtutor replay "
        "--teacher-model NAME`."
    )


@dataclass(frozen=True)
class SavingsInputs:
    """The filtered period's eligible traffic: what the teacher cost and the student would."""

    days: int  # local days with pairs
    requests: int  # eligible pairs
    teacher_usd: float  # teacher cost of the eligible pairs
    student_usd: float  # the student's per-token cost for the same pairs (estimated)


def savings_inputs(
    con: duckdb.DuckDBPyConnection, f: Filters, eligible: frozenset[str] | set[str]
) -> SavingsInputs:
    """Eligible = category in ``eligible`` (empty: every pair). The student's cost is its mean
    logged cost per successful answer times the eligible requests (0 when it logs none)."""
    row = query(
        con,
        f"""
        SELECT count(*) AS days, sum(requests) AS requests, sum(teacher_usd) AS teacher_usd,
          coalesce(sum(student_sum) / nullif(sum(student_n), 0), 0) AS student_per_request
        FROM (
          SELECT lts::DATE AS day, count(*) FILTER (WHERE el) AS requests,
            coalesce(sum(teacher_cost_usd) FILTER (WHERE el), 0) AS teacher_usd,
            sum(student_cost_usd) FILTER (WHERE el AND student_outcome = 'ok') AS student_sum,
            count(student_cost_usd) FILTER (WHERE el AND student_outcome = 'ok') AS student_n
          FROM (
            SELECT *, (len(CAST($eligible AS VARCHAR[])) = 0
                       OR list_contains(CAST($eligible AS VARCHAR[]), category)) AS el
            FROM facts WHERE {WHERE}
          ) GROUP BY 1
        )
        """,
        f,
        eligible=sorted(eligible),
    ).iloc[0]
    requests = int(row["requests"]) if row["days"] else 0
    return SavingsInputs(
        days=int(row["days"]),
        requests=requests,
        teacher_usd=float(row["teacher_usd"]) if requests else 0.0,
        student_usd=float(row["student_per_request"]) * requests if requests else 0.0,
    )


def coverage_message(coverage: pd.DataFrame) -> str | None:
    """What to tell the user about pairs without a teacher cost (None when every pair has one)."""
    if coverage.empty:
        return None
    n = int(coverage["missing"].sum())
    text = f"{n:,} {'pair has' if n == 1 else 'pairs have'} no teacher cost and count as $0 here."
    unknown = coverage[~coverage["in_price_table"]]["teacher_model"].tolist()
    if unknown:
        text += (
            f" Models not in the price table: {', '.join(unknown)} (add them to a price table "
            "and point SHADOWTUTOR_PRICE_TABLE at it)."
        )
    known = coverage[coverage["in_price_table"]]
    if not known.empty:
        k = int(known["missing"].sum())
        text += (
            f" {k:,} {'is a call' if k == 1 else 'are calls'} to "
            f"{', '.join(known['teacher_model'].astype(str))} that reported no token usage."
        )
    return text

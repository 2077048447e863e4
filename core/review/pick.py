"""Choosing which logged pairs go to review.

Two halves: :func:`select_ids` is pure selection logic over plain rows (tested without any
database), and :func:`sample` reads candidate rows from the shadow log with DuckDB, selects,
and returns the chosen records as log-record dicts ready for ``review.enqueue_records``.

Strategies (all deterministic for a given seed):

- ``random``: a uniform sample.
- ``stratified``: equal shares of each language x category cell, so rare cells are seen;
  a cell with too few pairs gives its share to the others.
- ``lowest_similarity``: the pairs where the student differed most from the teacher.
- ``student_errors``: pairs where the student failed or timed out.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import duckdb

from shadowtutor.errors import ShadowTutorError
from shadowtutor.log.record import DEFAULT_STUDENT, SOURCES

STRATEGIES = ("random", "stratified", "lowest_similarity", "student_errors")
STRATEGY_HELP = {
    "random": "a uniform random sample",
    "stratified": "equal shares of each language x category",
    "lowest_similarity": "lowest teacher-student similarity first",
    "student_errors": "student errors and timeouts",
}
MAX_SIZE = 10_000


class SamplingError(ShadowTutorError, ValueError):
    """Sampling parameters that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Filters:
    """Which pairs are candidates. Dates are inclusive days in UTC."""

    start: date | None = None
    end: date | None = None
    source: str | None = None
    language: str | None = None
    category: str | None = None
    student: str | None = None  # one student's pairs (``student_name``); None: all students

    def checked(self) -> Filters:
        if self.start and self.end and self.start > self.end:
            raise SamplingError(f"the start date {self.start} is after the end date {self.end}")
        if self.source and self.source not in SOURCES:
            raise SamplingError(f"unknown source {self.source!r}; use one of: {', '.join(SOURCES)}")
        return self


# --- pure selection ----------------------------------------------------------------------


def is_student_failure(row: dict[str, Any]) -> bool:
    """The student errored (timeouts are recorded as errors) or returned no answer."""
    if row.get("student_error"):
        return True
    return bool(row.get("student_model")) and row.get("student_response_missing", False)


def select_ids(
    rows: Iterable[dict[str, Any]], *, strategy: str, size: int, seed: int = 0
) -> list[str]:
    """Pick up to ``size`` ids from candidate rows (dicts with at least ``id``; also
    ``language``, ``category``, ``similarity``, ``student_error`` as the strategy needs).

    The result does not depend on the order of ``rows``: they are sorted by id first.
    """
    if strategy not in STRATEGIES:
        raise SamplingError(f"unknown strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}")
    if size < 1 or size > MAX_SIZE:
        raise SamplingError(f"the sample size must be 1 to {MAX_SIZE:,}, not {size}")
    ordered = sorted({str(r["id"]): r for r in rows}.values(), key=lambda r: str(r["id"]))
    rng = random.Random(seed)
    if strategy == "random":
        return [str(r["id"]) for r in rng.sample(ordered, min(size, len(ordered)))]
    if strategy == "lowest_similarity":
        scored = [r for r in ordered if r.get("similarity") is not None]
        scored.sort(key=lambda r: (float(r["similarity"]), str(r["id"])))
        return [str(r["id"]) for r in scored[:size]]
    if strategy == "student_errors":
        failed = [r for r in ordered if is_student_failure(r)]
        return [str(r["id"]) for r in rng.sample(failed, min(size, len(failed)))]
    return _stratified(ordered, size, rng)


def stratum(row: dict[str, Any]) -> tuple[str, str]:
    return (row.get("language") or "unknown", row.get("category") or "unknown")


def _stratified(rows: list[dict[str, Any]], size: int, rng: random.Random) -> list[str]:
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        cells[stratum(row)].append(row)
    queues = []
    for key in sorted(cells):
        members = cells[key][:]
        rng.shuffle(members)
        queues.append(members)
    chosen: list[str] = []
    # Round robin: each cell gives one pair a turn, so shares stay equal until a cell runs
    # out and the remaining cells fill its place.
    depth = 0
    while len(chosen) < size and any(depth < len(q) for q in queues):
        for members in queues:
            if depth < len(members) and len(chosen) < size:
                chosen.append(str(members[depth]["id"]))
        depth += 1
    return chosen


# --- reading the log ---------------------------------------------------------------------

_CANDIDATES = """
SELECT id, ts, source, language, category, similarity, student_error, student_model,
       student_response IS NULL AS student_response_missing
FROM pairs
WHERE id IS NOT NULL
"""


def _day_bounds(filters: Filters) -> tuple[list[str], list[Any]]:
    where, params = [], []
    if filters.start:
        where.append("ts >= ?")
        params.append(datetime.combine(filters.start, time()))
    if filters.end:
        where.append("ts < ?")
        params.append(datetime.combine(filters.end + timedelta(days=1), time()))
    for column in ("source", "language", "category"):
        value = getattr(filters, column)
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if filters.student:
        where.append("student_name = ?")
        params.append(filters.student)
    return where, params


def candidates(
    con: duckdb.DuckDBPyConnection, filters: Filters, exclude: set[str] | None = None
) -> list[dict[str, Any]]:
    """Candidate rows from the ``pairs`` view that match the filters and are not excluded."""
    where, params = _day_bounds(filters.checked())
    sql = _CANDIDATES + "".join(f" AND {w}" for w in where)
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    exclude = exclude or set()
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall() if row[0] not in exclude]


def fetch_records(con: duckdb.DuckDBPyConnection, ids: list[str]) -> list[dict[str, Any]]:
    """The full records for ``ids``, in the order of ``ids``, as log-record dicts."""
    if not ids:
        return []
    cur = con.execute(
        "SELECT id, ts, source, user_hash, conversation_id, category, language, messages, "
        "teacher, student, similarity, routing, metadata, coalesce(request_id, id) AS request_id, "
        f"coalesce(student_name, '{DEFAULT_STUDENT}') AS student_name FROM raw_pairs "
        "WHERE id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    )
    names = [d[0] for d in cur.description]
    found: dict[str, dict[str, Any]] = {}
    for row in cur.fetchall():
        record = dict(zip(names, row, strict=True))
        for key in ("messages", "metadata"):
            if isinstance(record[key], str):
                record[key] = json.loads(record[key])
        record["metadata"] = record["metadata"] or {}
        found.setdefault(record["id"], record)
    return [found[i] for i in ids if i in found]


@dataclass(frozen=True)
class Sample:
    strategy: str
    candidates: int
    records: list[dict[str, Any]]


def sample(
    con: duckdb.DuckDBPyConnection,
    *,
    strategy: str,
    size: int,
    seed: int = 0,
    filters: Filters | None = None,
    exclude: set[str] | None = None,
) -> Sample:
    """Select pairs from the log (skipping ``exclude``, e.g. ids already queued)."""
    rows = candidates(con, filters or Filters(), exclude)
    ids = select_ids(rows, strategy=strategy, size=size, seed=seed)
    return Sample(strategy=strategy, candidates=len(rows), records=fetch_records(con, ids))


def today_utc() -> date:
    return datetime.now(UTC).date()

"""Named DuckDB queries over the shadow log, each returning plain values or a DataFrame.

Speed at millions of pairs comes from a narrow in-memory table, ``facts``: one row a pair with
only the columns the dashboards need (no prompts, no answers), plus the pair's local time
``lts`` in the display time zone. It is cached per log folder and time zone and kept up to date
file by file: on each :func:`connect` only files that are new or changed since the last call
(by size and modification time) are read again, and rows of removed files are dropped, so
compaction (JSONL files replaced by Parquet) is followed without a full reload. A log in a
bucket works the same way: the listing gives each object's size and time, and DuckDB reads the
new objects through the bucket's client (:mod:`shadowtutor.log.storage`).

Every query is a fixed SQL text with bound parameters; the page's filters are parameters too
(never formatted into SQL). Absent category, language or source values read as ``(none)``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pandas as pd

from shadowtutor.log import read, schema, sql, storage
from shadowtutor.log.errors import LogReadError, TimezoneError
from shadowtutor.log.storage import JSONL_SUFFIXES, LogDir

log = logging.getLogger("shadowtutor.analytics")

NONE_LABEL = "(none)"

_FACTS_DDL = """
CREATE TABLE IF NOT EXISTS facts (
  _file UBIGINT, id VARCHAR, ts TIMESTAMP, lts TIMESTAMP,
  source VARCHAR, category VARCHAR, language VARCHAR,
  teacher_model VARCHAR, teacher_latency_ms DOUBLE, teacher_prompt_tokens BIGINT,
  teacher_completion_tokens BIGINT, teacher_cost_usd DOUBLE, teacher_failed BOOLEAN,
  student_model VARCHAR, student_latency_ms DOUBLE, student_cost_usd DOUBLE,
  student_outcome VARCHAR, similarity_method VARCHAR, similarity DOUBLE,
  request_id VARCHAR, student_name VARCHAR, is_primary BOOLEAN,
  request_kind VARCHAR, agreement_kind VARCHAR, agreement_score DOUBLE, agreement_valid BOOLEAN
);
CREATE TABLE IF NOT EXISTS log_files (_file UBIGINT, path VARCHAR, size BIGINT, mtime_ns BIGINT);
CREATE TABLE IF NOT EXISTS facts_options (kind VARCHAR, value VARCHAR);
"""
# The filter bar's choices, kept up to date at each refresh from the new rows only (in full
# again when a file has gone away), so the page never scans every row for them.
_OPTIONS_SQL = """
INSERT INTO facts_options
SELECT DISTINCT kind, value FROM (
  SELECT 'model' AS kind, teacher_model AS value FROM facts WHERE {scope}
  UNION ALL SELECT 'model', student_model FROM facts WHERE {scope} AND student_model IS NOT NULL
  UNION ALL SELECT 'category', category FROM facts WHERE {scope}
  UNION ALL SELECT 'language', language FROM facts WHERE {scope}
  UNION ALL SELECT 'source', source FROM facts WHERE {scope}
  UNION ALL SELECT 'student', student_name FROM facts WHERE {scope}
) EXCEPT SELECT kind, value FROM facts_options
"""
_ROWS_OF_FILES = (
    "list_contains(list_transform(CAST($files AS VARCHAR[]), lambda f: hash(f)), _file)"
)
# From the raw (nested) record to a facts row. ``_file`` is a hash of the file's path (the
# path itself is in ``log_files``). ``student_outcome``: NULL when the student was not asked,
# ok when it answered (the one rule of "success" in :mod:`shadowtutor.log.schema`, which the
# gate uses too), else timeout | error (a timeout is an error whose text says so; an answer
# with neither a response nor an error is an error; one whose server refused the request's
# feature, "unsupported: ...", is ``unsupported``: no failure, left out of the error rates
# as the gate leaves it out of the success rate). The request's kind and the answers'
# agreement (version 3; older records: plain, no agreement) come along. The local time is
# computed once here; for UTC it is the timestamp itself (the ICU conversion is the costliest
# step of a load).
_FACTS_SELECT = """
SELECT hash(filename), id, ts, {local},
  coalesce(source, '(none)'), coalesce(category, '(none)'), coalesce(language, '(none)'),
  coalesce(teacher.model, '(none)'), teacher.latency_ms, teacher.prompt_tokens,
  teacher.completion_tokens, teacher.cost_usd, teacher.error IS NOT NULL,
  student.model, student.latency_ms, student.cost_usd,
  CASE WHEN NOT {asked} THEN NULL
       WHEN {ok} THEN 'ok'
       WHEN {unsupported} THEN 'unsupported'
       WHEN regexp_matches(lower(student.error), 'time ?out|timed out|deadline') THEN 'timeout'
       ELSE 'error' END,
  similarity.method, similarity.score,
  coalesce(request_id, id), coalesce(student_name, '{default}'),
  request_id IS NULL OR request_id = id,
  coalesce(request.kind, 'plain'), agreement.kind, agreement.score,
  TRY_CAST(json_extract_string(agreement.details, '$.valid') AS BOOLEAN)
FROM (
  SELECT * EXCLUDE (ts), coalesce(
      try_strptime(CAST(ts AS VARCHAR), '%Y-%m-%dT%H:%M:%S.%gZ'),
      TRY_CAST(left(replace(CAST(ts AS VARCHAR), 'T', ' '), 23) AS TIMESTAMP)) AS ts
  FROM {reader}
) WHERE id IS NOT NULL AND ts IS NOT NULL
"""
_STUDENT_ASKED = schema.student_asked_sql("student.")
_STUDENT_OK = schema.student_ok_sql("student.")
_STUDENT_UNSUPPORTED = schema.student_unsupported_sql("student.")
_LOCAL_UTC = "ts"
_LOCAL_TZ = "timezone($tz, ts AT TIME ZONE 'UTC')"
# The student's response is read only to tell an answer from none (``student_outcome``); the
# teacher's too: the validity check needs to know there is one.
_ANSWER = schema.duckdb_type(
    schema.Answer,
    ("model", "latency_ms", "prompt_tokens", "completion_tokens", "cost_usd", "error", "response"),
)
_JSON_COLUMNS = {
    name: _ANSWER if name in ("teacher", "student") else schema.RAW_COLUMNS[name]
    for name in (
        "id",
        "ts",
        "schema_version",
        "source",
        "category",
        "language",
        "messages",
        "teacher",
        "student",
        "similarity",
        "routing",
        "request_id",
        "student_name",
        "request",
        "agreement",
    )
}
# Only the lines the log's validator accepts (as far as SQL can tell): a schema-invalid line
# is named by `logs validate`, quarantined by `logs compact` and never counted here.
_JSON_READER = (
    "(SELECT * FROM read_json($files, format='newline_delimited', ignore_errors=true, "
    "filename=true, maximum_object_size=67108864, columns={"
    + ", ".join(f"'{k}': '{v}'" for k, v in _JSON_COLUMNS.items())
    + f"}}) WHERE {sql.VALID_JSONL})"
)
# Version 1 parts have no `request_id` / `student_name`: when none of the files read has a
# column, it is added as NULL (see _parquet_reader). (An empty typed row joined with UNION ALL
# BY NAME did the same for every read, but kept DuckDB from reading only the columns used:
# 10.8 s instead of 7.3 s for 10M pairs in a bucket.)
_PARQUET_FILES = "read_parquet($files, filename=true, union_by_name=true, hive_partitioning=false)"
_V2_COLUMNS = ("request_id", "student_name")
# Version 3's columns, NULL in older parts the same way (their requests read as plain).
_V3_COLUMNS = {name: schema.RAW_COLUMNS[name] for name in ("request", "agreement")}


def _parquet_reader(con: duckdb.DuckDBPyConnection, files: list[str]) -> str:
    have = {
        row[0]
        for row in con.execute(
            f"DESCRIBE SELECT * FROM {_PARQUET_FILES}", {"files": files}
        ).fetchall()
    }
    missing = {c: "VARCHAR" for c in _V2_COLUMNS} | _V3_COLUMNS
    extra = "".join(f", CAST(NULL AS {t}) AS {c}" for c, t in missing.items() if c not in have)
    return f"(SELECT *{extra} FROM {_PARQUET_FILES})"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise TimezoneError(
            f"SHADOWTUTOR_TIMEZONE={name!r} is not a known time zone; use an IANA name such as "
            "'UTC' or 'Europe/Berlin'"
        ) from None


# --- the cached narrow table -------------------------------------------------------------

# A cache file made by other SQL is not reused: its name carries a hash of what fills it.
_CACHE_VERSION = hashlib.sha256(
    "\n".join(
        [_FACTS_DDL, _FACTS_SELECT, _JSON_READER, _PARQUET_FILES, _OPTIONS_SQL, _LOCAL_TZ]
        + [_STUDENT_ASKED, _STUDENT_OK, schema.DEFAULT_STUDENT, str(_V2_COLUMNS)]
        + [_STUDENT_UNSUPPORTED, str(_V3_COLUMNS)]
    ).encode()
).hexdigest()[:10]


class _Store:
    """One DuckDB database holding ``facts`` for one log and time zone: in memory, or in a
    file under ``cache_dir`` so that a restarted dashboard reads only what changed since (at
    10M pairs in a bucket the first build reads the whole log: 8-9 s and every byte of it)."""

    def __init__(self, log_dir: LogDir, tz: str, cache_dir: Path | None = None):
        self.log_dir = log_dir
        self.loc = storage.resolve(log_dir)
        self.tz = tz
        self.path: Path | None = None
        self.db = self._open(cache_dir) if cache_dir is not None else duckdb.connect()
        self.db.execute(
            "SET TimeZone = 'UTC'; SET enable_progress_bar = false; "
            "SET preserve_insertion_order = false"
        )
        self.loc.prepare(self.db)
        self.db.execute(_FACTS_DDL)
        # What the table holds: each file's size and time when it was read (kept in the file).
        self.signatures: dict[str, tuple[int, int]] = {
            path: (size, mtime)
            for path, size, mtime in self.db.execute(
                "SELECT path, size, mtime_ns FROM log_files"
            ).fetchall()
        }
        # The files of the last listing (JSONL, Parquet): the views over the whole log are
        # built from it, so a page view lists the log once.
        self.listing: tuple[list[Any], list[Any]] = ([], [])
        self.lock = threading.Lock()

    def _open(self, cache_dir: Path) -> duckdb.DuckDBPyConnection:
        """The cache file for this log and zone (its name carries a hash of the SQL that
        fills it, so a changed table is rebuilt, and older versions are removed), or an
        in-memory database if the file cannot be used (another process holds it, or it is
        damaged: it is then rebuilt)."""
        key = hashlib.sha256(f"{self.loc.key}|{self.tz}".encode()).hexdigest()[:16]
        self.path = Path(cache_dir) / f"facts-{key}-{_CACHE_VERSION}.duckdb"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for old in self.path.parent.glob(f"facts-{key}-*.duckdb*"):
                if not old.name.startswith(self.path.name):
                    old.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("analytics cache folder %s cannot be used (%s)", cache_dir, exc)
            self.path = None
            return duckdb.connect()
        problem: duckdb.Error
        for attempt in (1, 2):
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException as exc:
                if "lock" in str(exc).lower():  # another dashboard process holds it
                    log.info("analytics cache %s is in use: reading into memory", self.path)
                    break
                problem = exc
            except duckdb.Error as exc:
                problem = exc
            log.warning("analytics cache %s is unreadable (%s); rebuilding", self.path, problem)
            if attempt == 1:
                for f in (self.path, self.path.with_name(self.path.name + ".wal")):
                    f.unlink(missing_ok=True)
        self.path = None
        return duckdb.connect()

    def _current(self) -> dict[str, tuple[int, int]]:
        """One listing of each kind, with sizes and times (a bucket: one request each)."""
        jsonl = self.loc.entries("jsonl", JSONL_SUFFIXES)
        parquet = self.loc.entries("parquet", ".parquet")
        self.listing = ([e.path for e in jsonl], [e.path for e in parquet])
        return {self.loc.url(e.path): (e.size, e.mtime_ns) for e in jsonl + parquet}

    def refresh(self) -> tuple[list[Any], list[Any]]:
        """Bring ``facts`` up to date with the log; the listing it was built from."""
        with self.lock:
            current = self._current()
            listing = self.listing
            stale = [f for f, sig in self.signatures.items() if current.get(f) != sig]
            fresh = [f for f, sig in current.items() if self.signatures.get(f) != sig]
            if not stale and not fresh:
                return listing
            con = self.db.cursor()
            con.execute("BEGIN")
            try:
                self._apply(con, stale, fresh, current)
                con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                failed = self.loc.read_error(exc)
                if failed is not None:
                    raise failed from exc  # the storage, not a file, failed
                raise LogReadError(
                    f"could not read the shadow log in {self.log_dir}: {exc}. Move the file it "
                    "names out of the log folder (or run `shadowtutor logs validate`) and reload."
                ) from exc
            except Exception:
                con.execute("ROLLBACK")
                raise
            self.signatures = current
            return listing

    def _apply(
        self,
        con: duckdb.DuckDBPyConnection,
        stale: list[str],
        fresh: list[str],
        current: dict[str, tuple[int, int]],
    ) -> None:
        if stale:
            params = {"files": stale}
            con.execute(f"DELETE FROM facts WHERE {_ROWS_OF_FILES}", params)
            con.execute("DELETE FROM log_files WHERE list_contains($files, path)", params)
        local = _LOCAL_UTC if self.tz == "UTC" else _LOCAL_TZ
        jsonl = [f for f in fresh if f.endswith(JSONL_SUFFIXES)]
        parquet = [f for f in fresh if f.endswith(".parquet")]
        for files, reader in ((jsonl, _JSON_READER), (parquet, None)):
            if files:
                reader = reader or _parquet_reader(con, files)
                sql = "INSERT INTO facts " + _FACTS_SELECT.format(
                    reader=reader,
                    local=local,
                    asked=_STUDENT_ASKED,
                    ok=_STUDENT_OK,
                    unsupported=_STUDENT_UNSUPPORTED,
                    default=schema.DEFAULT_STUDENT,
                )
                con.execute(
                    sql, {"files": files} | ({} if local == _LOCAL_UTC else {"tz": self.tz})
                )
        if fresh:
            con.execute(
                "INSERT INTO log_files SELECT hash(f), f, s, m FROM (SELECT "
                "unnest(CAST($files AS VARCHAR[])) AS f, unnest(CAST($sizes AS BIGINT[])) AS s, "
                "unnest(CAST($mtimes AS BIGINT[])) AS m)",
                {
                    "files": fresh,
                    "sizes": [current[f][0] for f in fresh],
                    "mtimes": [current[f][1] for f in fresh],
                },
            )
        if set(self.signatures) - set(current):  # a file went away: its values may have too
            con.execute("DELETE FROM facts_options")
            con.execute(_OPTIONS_SQL.format(scope="true"))
        elif fresh:
            con.execute(_OPTIONS_SQL.format(scope=_ROWS_OF_FILES), {"files": fresh})


_STORES: OrderedDict[tuple[str, str, str], _Store] = OrderedDict()
_STORES_LOCK = threading.Lock()
_MAX_STORES = 4


def _store(log_dir: LogDir, tz: str, cache_dir: Path | None = None) -> _Store:
    loc = storage.resolve(log_dir)
    key = (loc.instance_key, tz, str(cache_dir))
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = _Store(loc, tz, cache_dir)
            while len(_STORES) > _MAX_STORES:
                _STORES.popitem(last=False)
        _STORES.move_to_end(key)
    return store


def connect(
    log_dir: LogDir, tz: str = "UTC", *, cache_dir: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the up-to-date ``facts`` table (narrow, local times in ``tz``)
    and the ``pairs`` / ``raw_pairs`` views over the whole log (for queries needing texts).
    With ``cache_dir`` the table is kept in a file there across restarts (the dashboard uses
    ``$SHADOWTUTOR_HOME/cache``)."""
    zone(tz)
    store = _store(log_dir, tz, cache_dir)
    listing = store.refresh()
    con = store.db.cursor()
    read.create_views(con, log_dir, listing)
    return con


# --- filters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the page's filter bar selected. Dates are local days, both ends included; an
    empty tuple means no restriction. A pair matches ``models`` when its teacher or its
    student model is among them.

    ``student`` picks one student's records (its answers, and the teacher's on the requests it
    saw); without it each request counts once, by its primary record, so the teacher's cost
    and tokens are never counted twice when several students answered."""

    start: date | None = None
    end: date | None = None
    models: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    student: str | None = None

    def params(self) -> dict[str, Any]:
        return {
            "start": datetime.combine(self.start, datetime.min.time()) if self.start else None,
            "end": datetime.combine(self.end + timedelta(days=1), datetime.min.time())
            if self.end
            else None,
            "models": list(self.models),
            "categories": list(self.categories),
            "languages": list(self.languages),
            "sources": list(self.sources),
            "student": self.student,
        }


# Appended to every filtered query; all parts are bound parameters.
WHERE = """
  (CAST($start AS TIMESTAMP) IS NULL OR lts >= CAST($start AS TIMESTAMP))
  AND (CAST($end AS TIMESTAMP) IS NULL OR lts < CAST($end AS TIMESTAMP))
  AND (len(CAST($models AS VARCHAR[])) = 0
       OR list_contains(CAST($models AS VARCHAR[]), teacher_model)
       OR list_contains(CAST($models AS VARCHAR[]), student_model))
  AND (len(CAST($categories AS VARCHAR[])) = 0
       OR list_contains(CAST($categories AS VARCHAR[]), category))
  AND (len(CAST($languages AS VARCHAR[])) = 0
       OR list_contains(CAST($languages AS VARCHAR[]), language))
  AND (len(CAST($sources AS VARCHAR[])) = 0
       OR list_contains(CAST($sources AS VARCHAR[]), source))
  AND (CASE WHEN CAST($student AS VARCHAR) IS NULL THEN is_primary
       ELSE student_name = CAST($student AS VARCHAR) END)
"""


def query(con: duckdb.DuckDBPyConnection, sql: str, f: Filters, **extra: Any) -> pd.DataFrame:
    """Run a fixed query whose text contains ``WHERE`` filters, with the filters bound."""
    return con.execute(sql, {**f.params(), **extra}).df()


@dataclass(frozen=True)
class FilterOptions:
    models: list[str]
    categories: list[str]
    languages: list[str]
    sources: list[str]
    students: list[str]
    first_day: date | None
    last_day: date | None
    pairs: int


def filter_options(con: duckdb.DuckDBPyConnection) -> FilterOptions:
    """The values each filter can take, and the log's first and last local day."""
    values: dict[str, list[str]] = {
        "model": [],
        "category": [],
        "language": [],
        "source": [],
        "student": [],
    }
    for kind, value in con.execute(
        "SELECT kind, value FROM facts_options ORDER BY kind, value"
    ).fetchall():
        values[kind].append(value)
    first, last, pairs = _row(
        con.execute(
            "SELECT min(lts)::DATE, max(lts)::DATE, count(*) FILTER (WHERE is_primary) FROM facts"
        )
    )
    return FilterOptions(
        models=values["model"],
        categories=values["category"],
        languages=values["language"],
        sources=values["source"],
        students=values["student"],
        first_day=first,
        last_day=last,
        pairs=int(pairs),
    )


def count_pairs(con: duckdb.DuckDBPyConnection, f: Filters) -> int:
    return int(_row(con.execute(f"SELECT count(*) FROM facts WHERE {WHERE}", f.params()))[0])


def _row(cur: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The one row of an aggregate query (always there)."""
    row = cur.fetchone()
    assert row is not None
    return row


# --- home --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    pairs_7d: int
    teacher_spend_mtd: float | None
    mean_similarity_7d: float | None
    similarity_method: str | None
    student_p95_ms_7d: float | None
    student_error_rate_7d: float | None


def headline(con: duckdb.DuckDBPyConnection, now: datetime) -> Headline:
    """The Home page's figures: last 7 days up to ``now`` (UTC), and the UTC month to date."""
    if now.tzinfo is not None:
        now = now.astimezone(zone("UTC")).replace(tzinfo=None)
    since = now - timedelta(days=7)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    row = _row(
        con.execute(
            """
        SELECT
          count(*) FILTER (WHERE ts >= $since),
          sum(teacher_cost_usd) FILTER (WHERE ts >= $month_start),
          quantile_cont(student_latency_ms, 0.95)
            FILTER (WHERE ts >= $since AND student_outcome = 'ok'),
          avg(CASE WHEN student_outcome <> 'ok' THEN 1.0 ELSE 0.0 END)
            FILTER (WHERE ts >= $since AND student_outcome IS NOT NULL
                    AND student_outcome <> 'unsupported')
        FROM facts WHERE ts <= $now AND is_primary
        """,
            {"since": since, "month_start": month_start, "now": now},
        )
    )
    sim = con.execute(
        """
        SELECT similarity_method, avg(similarity) FROM facts
        WHERE ts >= $since AND ts <= $now AND similarity IS NOT NULL AND is_primary
        GROUP BY 1 ORDER BY count(*) DESC LIMIT 1
        """,
        {"since": since, "now": now},
    ).fetchone()
    return Headline(
        pairs_7d=int(row[0] or 0),
        teacher_spend_mtd=row[1],
        mean_similarity_7d=sim[1] if sim else None,
        similarity_method=sim[0] if sim else None,
        student_p95_ms_7d=row[2],
        student_error_rate_7d=row[3],
    )


def utc_bounds(f: Filters, tz: str) -> tuple[datetime | None, datetime | None]:
    """The filter's period as aware UTC datetimes [start, end), for database queries."""
    local = zone(tz)
    utc = zone("UTC")
    p = f.params()
    return tuple(  # type: ignore[return-value]
        None if p[k] is None else p[k].replace(tzinfo=local).astimezone(utc)
        for k in ("start", "end")
    )

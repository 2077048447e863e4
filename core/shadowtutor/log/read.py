"""Reading the shadow log: list its files, read JSONL lines (bad ones counted, never raised),
every record (JSONL then Parquet), the DuckDB views over the whole log, and ids.

Every reader lists and reads through the log's storage (:mod:`shadowtutor.log.storage`), so a
folder and a bucket read the same way; JSONL parts may be plain or zstd-compressed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from shadowtutor.log import feedback, schema, sql, storage
from shadowtutor.log.errors import CorruptPartError, LogReadError, RecordError
from shadowtutor.log.storage import JSONL_SUFFIXES, LogDir


@dataclass
class BadLine:
    path: str
    line_no: int
    reason: str


@dataclass
class ReadReport:
    records: int = 0
    bad: list[BadLine] = field(default_factory=list)
    torn_tail: int = 0  # bad lines that are the last line of their file (a crash mid-write)


def jsonl_root(log_dir: Path) -> Path:
    """A log folder's JSONL root (``jsonl/``)."""
    return Path(log_dir) / "jsonl"


def parquet_root(log_dir: Path) -> Path:
    """A log folder's Parquet root (``parquet/``)."""
    return Path(log_dir) / "parquet"


def jsonl_files(log_dir: LogDir, *, before: date | None = None) -> list[Any]:
    """The JSONL files (``Path`` in a folder, ``PurePosixPath`` in a bucket), sorted."""
    files = storage.resolve(log_dir).files("jsonl", JSONL_SUFFIXES)
    if before is None:
        return files
    return [p for p in files if p.parent.name[5:] < before.isoformat()]


def parquet_files(log_dir: LogDir) -> list[Any]:
    return storage.resolve(log_dir).files("parquet", ".parquet")


def read_jsonl(
    path: Any, report: ReadReport | None = None, log_dir: LogDir | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the valid records of one file; bad lines go to ``report`` with their reason.
    ``log_dir`` is needed for a file in a bucket (it says how to reach it)."""
    for rec, _raw in read_jsonl_lines(path, report, log_dir):
        yield rec


def read_jsonl_lines(
    path: Any, report: ReadReport | None = None, log_dir: LogDir | None = None
) -> Iterator[tuple[dict[str, Any], bytes]]:
    where = (
        storage.resolve(log_dir)
        if log_dir is not None
        else storage.FolderStorage(Path(path).parent)
    )
    try:
        lines = where.read_bytes(path).split(b"\n")
    except CorruptPartError as exc:
        if report is None:
            raise LogReadError(str(exc)) from None
        report.bad.append(BadLine(str(path), 0, str(exc).split(": ", 1)[-1]))
        return
    last = len(lines) - 1 if lines and lines[-1] else len(lines) - 2
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            obj = schema.loads(raw)
        except RecordError as exc:
            if report is not None:
                reason = str(exc)
                if reason.startswith("not valid JSON") or reason.startswith("not valid UTF-8"):
                    reason = f"{reason}: torn or corrupt"
                report.bad.append(BadLine(str(path), i + 1, reason))
                report.torn_tail += i == last
            continue
        try:
            rec = schema.validate(obj)
        except RecordError as exc:
            if report is not None:
                report.bad.append(BadLine(str(path), i + 1, str(exc)))
            continue
        if report is not None:
            report.records += 1
        yield rec, raw


def _parquet_unreadable(path: Path, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"Parquet part cannot be read ({first}); it is truncated or corrupt: restore it from a "
        "backup, or move it out of the log folder and re-import its data"
    )


def iter_records(log_dir: LogDir, report: ReadReport | None = None) -> Iterator[dict[str, Any]]:
    """Every record in the log (JSONL then Parquet), validated.

    An unreadable Parquet part is a bad entry in ``report`` (line 0); without a report it
    raises :class:`LogReadError`.
    """
    for path in jsonl_files(log_dir):
        yield from read_jsonl(path, report, log_dir)
    files = parquet_files(log_dir)
    if not files:
        return
    con = sql.connect(log_dir)
    for path in files:
        try:
            cur = con.execute(f"SELECT * FROM read_parquet({sql.sql_list([path], log_dir)})")
            names = [d[0] for d in cur.description]
            batch = cur.fetchmany(5000)
        except duckdb.Error as exc:
            if report is None:
                raise LogReadError(f"{path}: {_parquet_unreadable(path, exc)}") from None
            report.bad.append(BadLine(str(path), 0, _parquet_unreadable(path, exc)))
            continue
        while batch:
            for row in batch:
                rec = dict(zip(names, row, strict=True))
                rec["messages"] = json.loads(rec["messages"])
                rec["metadata"] = json.loads(rec["metadata"]) if rec["metadata"] else {}
                if report is not None:
                    report.records += 1
                yield rec
            batch = cur.fetchmany(5000)


def validate_log(log_dir: LogDir) -> ReadReport:
    report = ReadReport()
    for _ in iter_records(log_dir, report):
        pass
    return report


def create_views(
    con: duckdb.DuckDBPyConnection,
    log_dir: LogDir,
    listing: tuple[list[Any], list[Any]] | None = None,
) -> None:
    """Create (or replace) the views ``raw_pairs``, ``pairs`` and ``feedback`` on a DuckDB
    connection (over ``listing``, the (JSONL, Parquet) files just listed, or a fresh
    listing; ``feedback`` over its own part)."""
    storage.resolve(log_dir).prepare(con)
    listing = listing or (jsonl_files(log_dir), parquet_files(log_dir))
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw_pairs AS {sql.raw_select(log_dir, listing)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW pairs AS {sql.FLAT_SELECT} FROM raw_pairs")
    feedback.create_view(con, log_dir)  # users' feedback, joinable to pairs on request_id


def known_ids(log_dir: LogDir) -> set[str]:
    con = sql.connect(log_dir)
    create_views(con, log_dir)
    return {row[0] for row in con.execute("SELECT id FROM raw_pairs").fetchall()}


def tail_ids(path: Path, max_bytes: int = 16 * 1024 * 1024) -> set[str]:
    """Ids of the records in the last ``max_bytes`` of a JSONL file (torn lines skipped)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        data = f.read()
    lines = data.split(b"\n")
    if size > max_bytes:
        lines = lines[1:]  # the first one is cut by the seek
    ids = set()
    for line in lines:
        try:
            ids.add(json.loads(line)["id"])
        except (ValueError, KeyError, TypeError):
            continue
    return ids


def known_ids_in(parquet: list[Any], log_dir: LogDir | None = None) -> set[str]:
    """The ids in the Parquet parts (local files unless ``log_dir`` says where they are)."""
    if not parquet:
        return set()
    con = sql.connect(log_dir) if log_dir is not None else duckdb.connect()
    rows = con.execute(f"SELECT id FROM read_parquet({sql.sql_list(parquet, log_dir)})")
    return {r[0] for r in rows.fetchall()}

"""The shadow log on disk: append, read, validate, import, compact.

Layout under the log folder::

    jsonl/date=YYYY-MM-DD/<host>-<pid>-<token>.jsonl    one file per day and writer process
    parquet/date=YYYY-MM-DD/part-<hash>.parquet          closed days after ``compact``

A writer only ever appends whole lines to its own file, so many processes can write at once
and a crash can at worst leave one torn last line, which readers skip and count. The date
partition is the record's own UTC date, so replays and imports of old data land where they
belong.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from shadowtutor.log import record as logrecord
from shadowtutor.log.record import RecordError

ANSWER_STRUCT = (
    "STRUCT(model VARCHAR, provider VARCHAR, response VARCHAR, latency_ms DOUBLE, "
    "ttft_ms DOUBLE, prompt_tokens BIGINT, completion_tokens BIGINT, cost_usd DOUBLE, "
    "price_version VARCHAR, error VARCHAR)"
)
RAW_COLUMNS = {
    "id": "VARCHAR",
    "ts": "VARCHAR",
    "schema_version": "INTEGER",
    "source": "VARCHAR",
    "user_hash": "VARCHAR",
    "conversation_id": "VARCHAR",
    "category": "VARCHAR",
    "language": "VARCHAR",
    "messages": "JSON",
    "teacher": ANSWER_STRUCT,
    "student": ANSWER_STRUCT,
    "similarity": "STRUCT(method VARCHAR, score DOUBLE)",
    "routing": "STRUCT(served_by VARCHAR, stage DOUBLE, bucket DOUBLE, eligible BOOLEAN)",
    "metadata": "JSON",
}
_ANSWER_COLS = logrecord.ANSWER_FIELDS
# The flat view every query reads: one row a pair, nested fields as prefixed columns.
FLAT_SELECT = (
    "SELECT id, CAST(left(replace(ts, 'T', ' '), 23) AS TIMESTAMP) AS ts, source, user_hash, "
    "conversation_id, category, language, messages, "
    + ", ".join(f"teacher.{c} AS teacher_{c}" for c in _ANSWER_COLS)
    + ", "
    + ", ".join(f"student.{c} AS student_{c}" for c in _ANSWER_COLS)
    + ", similarity.method AS similarity_method, similarity.score AS similarity, "
    "routing.served_by AS served_by, CAST(routing.stage AS DOUBLE) AS stage, "
    "routing.bucket AS bucket, routing.eligible AS eligible, metadata"
)


def jsonl_root(log_dir: Path) -> Path:
    return Path(log_dir) / "jsonl"


def parquet_root(log_dir: Path) -> Path:
    return Path(log_dir) / "parquet"


def _day_dir(root: Path, day: str) -> Path:
    return root / f"date={day}"


# --- writing -----------------------------------------------------------------------------


class LogWriter:
    """Appends records to this process's file for each day. Thread-safe.

    Each call writes its lines with a single ``os.write`` on an ``O_APPEND`` descriptor, so
    lines from threads never interleave and a crash leaves at most one torn line.
    """

    def __init__(self, log_dir: Path | str):
        self.log_dir = Path(log_dir)
        self._token = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    @property
    def token(self) -> str:
        """This writer's file name stem (``<host>-<pid>-<random>``), the same every day."""
        return self._token

    def _fd(self, day: str) -> int:
        if os.getpid() != self._pid:  # forked: never share a file with the parent
            self._fds.clear()
            self._pid = os.getpid()
            self._token = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        fd = self._fds.get(day)
        if fd is None:
            folder = _day_dir(jsonl_root(self.log_dir), day)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{self._token}.jsonl"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._fds[day] = fd
        return fd

    def append(self, record: dict[str, Any]) -> None:
        self.append_many([record])

    def append_many(self, records: Iterable[dict[str, Any]]) -> int:
        by_day: dict[str, list[str]] = {}
        for rec in records:
            by_day.setdefault(rec["ts"][:10], []).append(logrecord.dumps(rec))
        count = 0
        with self._lock:
            for day, lines in by_day.items():
                data = ("\n".join(lines) + "\n").encode()
                fd = self._fd(day)
                view = memoryview(data)
                while view:  # os.write may write less than asked on some filesystems
                    written = os.write(fd, view)
                    view = view[written:]
                count += len(lines)
        return count

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- reading -----------------------------------------------------------------------------


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


def jsonl_files(log_dir: Path, *, before: date | None = None) -> list[Path]:
    root = jsonl_root(log_dir)
    if not root.exists():
        return []
    out = []
    for folder in sorted(root.glob("date=*")):
        if before is None or folder.name[5:] < before.isoformat():
            out.extend(sorted(folder.glob("*.jsonl")))
    return out


def parquet_files(log_dir: Path) -> list[Path]:
    root = parquet_root(log_dir)
    return sorted(root.glob("date=*/*.parquet")) if root.exists() else []


def read_jsonl(path: Path, report: ReadReport | None = None) -> Iterator[dict[str, Any]]:
    """Yield the valid records of one file; bad lines go to ``report`` with their reason."""
    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    last = len(lines) - 1 if lines and lines[-1] else len(lines) - 2
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            rec = logrecord.validate(json.loads(raw))
        except (json.JSONDecodeError, UnicodeDecodeError):
            if report is not None:
                report.bad.append(BadLine(str(path), i + 1, "not valid JSON (torn or corrupt)"))
                report.torn_tail += i == last
            continue
        except RecordError as exc:
            if report is not None:
                report.bad.append(BadLine(str(path), i + 1, str(exc)))
            continue
        if report is not None:
            report.records += 1
        yield rec


def iter_records(log_dir: Path, report: ReadReport | None = None) -> Iterator[dict[str, Any]]:
    """Every record in the log (JSONL then Parquet), validated."""
    for path in jsonl_files(log_dir):
        yield from read_jsonl(path, report)
    files = parquet_files(log_dir)
    if files:
        con = duckdb.connect()
        cur = con.execute(f"SELECT * FROM read_parquet({_sql_list(files)})")
        names = [d[0] for d in cur.description]
        while batch := cur.fetchmany(5000):
            for row in batch:
                rec = dict(zip(names, row, strict=True))
                rec["messages"] = json.loads(rec["messages"])
                rec["metadata"] = json.loads(rec["metadata"]) if rec["metadata"] else {}
                if report is not None:
                    report.records += 1
                yield rec


def validate_log(log_dir: Path) -> ReadReport:
    report = ReadReport()
    for _ in iter_records(log_dir, report):
        pass
    return report


def _sql_list(paths: Iterable[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _read_json_sql(paths: Iterable[Path]) -> str:
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in RAW_COLUMNS.items()) + "}"
    return (
        f"read_json({_sql_list(paths)}, format='newline_delimited', columns={cols}, "
        "ignore_errors=true, maximum_object_size=67108864)"
    )


def raw_select(log_dir: Path) -> str:
    """SQL selecting every raw record (JSONL and Parquet together); empty when no files."""
    parts = []
    jsonl = jsonl_files(log_dir)
    if jsonl:
        parts.append(f"SELECT * FROM {_read_json_sql(jsonl)} WHERE id IS NOT NULL")
    parquet = parquet_files(log_dir)
    if parquet:
        parts.append(f"SELECT * FROM read_parquet({_sql_list(parquet)})")
    if not parts:
        cols = ", ".join(f"CAST(NULL AS {t}) AS {k}" for k, t in RAW_COLUMNS.items())
        return f"SELECT {cols} WHERE false"
    return " UNION ALL BY NAME ".join(parts)


def create_views(con: duckdb.DuckDBPyConnection, log_dir: Path) -> None:
    """Create (or replace) the views ``raw_pairs`` and ``pairs`` on a DuckDB connection."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw_pairs AS {raw_select(log_dir)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW pairs AS {FLAT_SELECT} FROM raw_pairs")


def known_ids(log_dir: Path) -> set[str]:
    con = duckdb.connect()
    create_views(con, log_dir)
    return {row[0] for row in con.execute("SELECT id FROM raw_pairs").fetchall()}


# --- import ------------------------------------------------------------------------------


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    bad: list[BadLine] = field(default_factory=list)


def import_file(
    path: Path,
    log_dir: Path,
    *,
    source: str | None = None,
    teacher_model: str | None = None,
    batch: int = 2000,
) -> ImportReport:
    """Import our schema or OpenAI chat JSONL. Good lines are kept, bad lines reported.

    Ids already in the log (or earlier in the same file) are skipped, so re-running an import
    never duplicates a record.
    """
    report = ImportReport()
    seen = known_ids(log_dir)
    pending: list[dict[str, Any]] = []
    with LogWriter(log_dir) as writer, open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                rec = logrecord.parse_line(raw)
            except RecordError as exc:
                report.bad.append(BadLine(str(path), line_no, str(exc)))
                continue
            if rec["id"] in seen:
                report.duplicates += 1
                continue
            if source:
                rec["source"] = source
            if teacher_model and rec["teacher"]["model"] == "unknown":
                rec["teacher"]["model"] = teacher_model
            seen.add(rec["id"])
            pending.append(rec)
            if len(pending) >= batch:
                report.imported += writer.append_many(pending)
                pending.clear()
        report.imported += writer.append_many(pending)
    return report


# --- compaction --------------------------------------------------------------------------


@dataclass
class CompactReport:
    days: list[str] = field(default_factory=list)
    rows_written: int = 0
    duplicates_skipped: int = 0
    bad_lines: int = 0
    files_removed: int = 0
    quarantined: list[str] = field(default_factory=list)  # files with bad lines, moved aside
    problems: list[str] = field(default_factory=list)


def compact(log_dir: Path, *, today: date | None = None) -> CompactReport:
    """Turn every closed day's JSONL files into one Parquet part.

    The JSONL files are removed only after the Parquet part is on disk (written to a temporary
    name, then renamed) and holds exactly the good, not-yet-compacted records they contained.
    A re-run after a crash finds the part by its name (a hash of the source files) and only
    finishes the removal.
    """
    today = today or datetime.now(UTC).date()
    report = CompactReport()
    by_day: dict[str, list[Path]] = {}
    for path in jsonl_files(log_dir, before=today):
        by_day.setdefault(path.parent.name[5:], []).append(path)
    for day, files in sorted(by_day.items()):
        _compact_day(log_dir, day, files, report)
    return report


def _compact_day(log_dir: Path, day: str, files: list[Path], report: CompactReport) -> None:
    out_dir = _day_dir(parquet_root(log_dir), day)
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256("\n".join(f.name for f in files).encode()).hexdigest()[:16]
    target = out_dir / f"part-{digest}.parquet"
    others = [p for p in out_dir.glob("*.parquet") if p != target]
    existing = known_ids_in(others)
    read = ReadReport()
    good_ids: set[str] = set()
    for rec in (r for f in files for r in read_jsonl(f, read)):
        good_ids.add(rec["id"])
    expected = len(good_ids - existing)
    report.bad_lines += len(read.bad)
    report.duplicates_skipped += read.records - expected
    con = duckdb.connect()
    if not target.exists():
        tmp = target.with_suffix(".parquet.tmp")
        excluded = ""
        if others:
            excluded = f"AND id NOT IN (SELECT id FROM read_parquet({_sql_list(others)}))"
        con.execute(
            f"COPY (SELECT * FROM {_read_json_sql(files)} WHERE id IS NOT NULL {excluded} "
            "QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts) = 1 ORDER BY ts) "
            f"TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)"
        )
        os.replace(tmp, target)
    written = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0]
    if written != expected:
        target.unlink()
        report.problems.append(
            f"{day}: Parquet part has {written} rows but the JSONL files hold {expected} good "
            "records; JSONL kept, nothing removed"
        )
        return
    damaged = {b.path for b in read.bad}
    for f in files:
        if str(f) in damaged:  # keep the bytes we could not read, out of the readers' way
            keep = _day_dir(Path(log_dir) / "quarantine", day)
            keep.mkdir(parents=True, exist_ok=True)
            os.replace(f, keep / f.name)
            report.quarantined.append(str(keep / f.name))
        else:
            f.unlink()
        report.files_removed += 1
    report.days.append(day)
    report.rows_written += written


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


def known_ids_in(parquet: list[Path]) -> set[str]:
    if not parquet:
        return set()
    rows = duckdb.connect().execute(f"SELECT id FROM read_parquet({_sql_list(parquet)})")
    return {r[0] for r in rows.fetchall()}

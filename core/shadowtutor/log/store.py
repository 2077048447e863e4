"""The shadow log on disk: append, read, validate, import, compact.

Layout under the log folder::

    jsonl/date=YYYY-MM-DD/<host>-<pid>-<token>.jsonl    one file per day and writer process
    parquet/date=YYYY-MM-DD/part-<hash>.parquet          closed days after ``compact``

A writer only ever appends whole lines to its own file, so many processes can write at once
and a crash can at worst leave one torn last line, which readers skip and count. The date
partition is the record's own UTC date, so replays and imports of old data land where they
belong.

The log can also live in a bucket (``SHADOWTUTOR_LOG_DIR=s3://bucket/prefix``, see
:mod:`shadowtutor.log.location`). Object storage has no append, so there each writer process
spools to local part files under the same crash rules (:class:`SpoolWriter`), closes a part at
a size or an age and uploads it zstd-compressed as
``jsonl/date=YYYY-MM-DD/<host>-<pid>-<token>-<seq>.jsonl.zst``; the local file is deleted only
once the bucket reports the object with the size that was sent. Readers take plain and
compressed parts alike, in a folder or a bucket. Every
reader here lists, reads and hands DuckDB the files through the location, so a folder and a
bucket read the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

try:  # POSIX; elsewhere compaction and writers do not lock (one process at a time)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from shadowtutor.errors import ShadowTutorError
from shadowtutor.log import record as logrecord
from shadowtutor.log.location import (
    JSONL_SUFFIXES,
    CorruptPartError,
    FolderLocation,
    LogDir,
    LogStorageError,
    S3Location,
    is_s3,
    location,
)
from shadowtutor.log.record import RecordError

__all__ = ["LogStorageError", "S3Location", "location"]  # re-exported with the store's API
S3_URL = "s3://"
log = logging.getLogger("shadowtutor.log")

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
    "request_id": "VARCHAR",
    "student_name": "VARCHAR",
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
    "routing.bucket AS bucket, routing.eligible AS eligible, metadata, "
    # version 1 records: their own request's primary record, the default student's
    "coalesce(request_id, id) AS request_id, "
    f"coalesce(student_name, '{logrecord.DEFAULT_STUDENT}') AS student_name, "
    "(request_id IS NULL OR request_id = id) AS is_primary"
)


def jsonl_root(log_dir: Path) -> Path:
    return Path(log_dir) / "jsonl"


def parquet_root(log_dir: Path) -> Path:
    return Path(log_dir) / "parquet"


def _day_dir(root: Path, day: str) -> Path:
    return root / f"date={day}"


# --- writing -----------------------------------------------------------------------------


def _token() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class LogWriteError(OSError):
    """``append_many`` failed part way (a full disk, say). ``written`` is how many of the
    records, from the start of the list, the writer took: their lines are on disk, or the
    rest of the one torn line is kept and written first by the next call, so they must not
    be sent again. The records after them were not written at all: re-send exactly those."""

    def __init__(self, written: int, cause: OSError):
        super().__init__(cause.errno, f"{cause.strerror or cause} ({written} records written)")
        self.written = written
        self.cause = cause


class LogWriter:
    """Appends records to this process's file for each day. Thread-safe.

    Each call writes its lines with ``os.write`` on an ``O_APPEND`` descriptor under the
    writer's lock, so lines from threads never interleave and a crash leaves at most one torn
    line. A write that fails part way (disk full) is resumed, never repeated: the rest of the
    torn line is written first on the next call, so no line is doubled or broken.

    While writing, the file is locked (``flock``) and checked to still be the day's file:
    :func:`compact` takes the same lock before it reads a file and removes the file before
    releasing it, so lines written after a day was compacted go to a new file, never to a
    deleted one.

    ``LogWriter(location)`` for a bucket gives a :class:`SpoolWriter` (same API). Functions in
    ``listeners`` are called with each batch once it is written (the metrics use this).
    """

    def __new__(cls, log_dir: LogDir, *args: Any, **kwargs: Any) -> LogWriter:
        if cls is LogWriter and is_s3(log_dir):
            return super().__new__(SpoolWriter)
        return super().__new__(cls)

    def __init__(self, log_dir: LogDir):
        self.log_dir = Path(log_dir.root if isinstance(log_dir, FolderLocation) else log_dir)
        self._token = _token()
        self._fds: dict[str, int] = {}
        self._paths: dict[str, str] = {}
        # day -> (line, bytes of it already written, (device, inode) of the file written to)
        self._torn: dict[str, tuple[bytes, int, tuple[int, int]]] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.listeners: list[Callable[[list[dict[str, Any]]], None]] = []

    @property
    def token(self) -> str:
        """This writer's file name stem (``<host>-<pid>-<random>``), the same every day."""
        return self._token

    @property
    def held(self) -> int:
        """Records whose line is only partly on disk (its rest waits for the next write)."""
        return len(self._torn)

    def _path(self, day: str) -> str:
        path = self._paths.get(day)
        if path is None:  # cached: building a Path costs more than the write itself
            path = self._paths[day] = str(
                _day_dir(jsonl_root(self.log_dir), day) / f"{self._token}.jsonl"
            )
        return path

    def _fd(self, day: str) -> int:
        """The day's descriptor, locked, and still the file at the day's path."""
        if os.getpid() != self._pid:  # forked: never share a file with the parent
            self._fds.clear()
            self._paths.clear()
            self._torn.clear()
            self._pid = os.getpid()
            self._token = _token()
        path = self._path(day)
        while True:
            fd = self._fds.get(day)
            if fd is None:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._fds[day] = fd
            _lock_file(fd)
            if _is_file_at(fd, path):
                return fd
            # compacted (removed) or quarantined (moved) since the last write: a new file
            _unlock_file(fd)
            os.close(fd)
            del self._fds[day]

    def append(self, record: dict[str, Any]) -> None:
        self.append_many([record])

    def append_many(self, records: Iterable[dict[str, Any]]) -> int:
        """Write the records in order; returns how many. On an OSError part way, raises
        :class:`LogWriteError` saying how many were taken (see there)."""
        records = records if isinstance(records, list) else list(records)
        lines = [(rec["ts"][:10], logrecord.dump_line(rec)) for rec in records]
        count = 0
        with self._lock:
            start = 0
            while start < len(lines):  # runs of one day, in order
                day = lines[start][0]
                end = start
                while end < len(lines) and lines[end][0] == day:
                    end += 1
                count += self._write_run(day, [line for _, line in lines[start:end]], count)
                start = end
        self._notify(records)
        return count

    def _write_run(self, day: str, lines: list[bytes], before: int) -> int:
        try:
            fd = self._fd(day)
        except OSError as exc:
            raise LogWriteError(before, exc) from exc
        try:
            torn = self._torn.get(day)
            if torn is not None:
                line, sent, torn_file = torn
                # the same file: finish the line; a new file: the start went with the old
                # file (a bad line there), so write the whole line here
                rest = line[sent:] if torn_file == _identity(fd) else line
                try:
                    _write_all(fd, rest)
                except _PartialWrite as exc:
                    self._torn[day] = (line, len(line) - len(rest) + exc.sent, _identity(fd))
                    raise LogWriteError(before, exc.cause) from exc.cause
                del self._torn[day]
            data = b"".join(lines)
            try:
                _write_all(fd, data)
            except _PartialWrite as exc:
                done = 0
                offset = 0
                for line in lines:
                    if offset + len(line) <= exc.sent:
                        done += 1
                        offset += len(line)
                        continue
                    if exc.sent > offset:  # this line is torn: keep its rest
                        self._torn[day] = (line, exc.sent - offset, _identity(fd))
                        done += 1
                    break
                raise LogWriteError(before + done, exc.cause) from exc.cause
            return len(lines)
        finally:
            _unlock_file(fd)

    def finish_torn(self) -> None:
        """Write the rest of any line a failed write left torn (LogWriteError if it fails)."""
        with self._lock:
            for day in list(self._torn):
                self._write_run(day, [], 0)

    def _notify(self, records: list[dict[str, Any]]) -> None:
        for listener in self.listeners:
            try:
                listener(records)
            except Exception:  # an observer never breaks the log
                log.exception("log listener failed")

    def stats(self) -> dict[str, Any]:
        """Upload state (always empty for a folder: the file is the log)."""
        return {
            "parts_pending": 0,
            "upload_lag_s": 0.0,
            "last_upload_lag_s": 0.0,
            "uploaded_parts": 0,
            "upload_errors": 0,
            "last_upload_error": None,
        }

    def close(self) -> None:
        """Close the files; the rest of a torn line is written first when the disk allows
        (else it stays torn, as after a crash)."""
        try:
            self.finish_torn()
        except OSError:
            pass
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Part:
    path: Path
    fd: int
    born: float  # time.time() of the first write
    size: int = 0


class SpoolWriter(LogWriter):
    """A writer for a log in a bucket: local part files, uploaded when closed.

    Spool layout (``SHADOWTUTOR_LOG_SPOOL_DIR/<bucket hash>/``)::

        open/date=D/<host>-<pid>-<token>-<seq>.jsonl    being appended to (same rules as a folder)
        ready/date=D/<same name>                        closed, waiting for its upload

    A part is closed when it reaches ``SHADOWTUTOR_LOG_PART_MB`` or is
    ``SHADOWTUTOR_LOG_PART_SECONDS`` old. A background thread uploads ready parts, zstd-compressed,
    to ``jsonl/date=D/<same name>.zst``; a part is deleted locally only after the bucket reports
    the object with the size sent. A failed upload is retried with a growing pause (up to 30 s).
    At start, ready parts left by any process, and open parts of processes on this machine that
    are no longer running, are uploaded. The host, pid and a random token in every name keep
    names from colliding across machines; uploading the same part twice (a crash between the
    upload and the local delete) writes the same bytes to the same name.
    """

    def __init__(self, log_dir: LogDir):
        loc = location(log_dir)
        assert isinstance(loc, S3Location)
        self.location = loc
        self.log_dir = loc  # type: ignore[assignment]
        self._lock = threading.Lock()
        self.listeners = []
        self._open_dir = loc.spool / "open"
        self._ready_dir = loc.spool / "ready"
        self._counts = {"uploaded_parts": 0, "upload_errors": 0}
        self.last_upload_error: str | None = None
        self.last_upload_lag_s = 0.0
        self._born: dict[str, float] = {}
        self._closed = False
        self._torn = {}
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._token = _token()
        self._parts: dict[str, _Part] = {}
        self._seq = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._recover()
        self._thread = threading.Thread(target=self._upload_loop, name="shadow-upload", daemon=True)
        self._thread.start()

    # --- spooling ----------------------------------------------------------------------

    def append_many(self, records: Iterable[dict[str, Any]]) -> int:
        records = records if isinstance(records, list) else list(records)
        by_day: dict[str, list[bytes]] = {}
        for rec in records:
            by_day.setdefault(rec["ts"][:10], []).append(logrecord.dump_line(rec))
        count = 0
        with self._lock:
            for day, lines in by_day.items():
                self._write(day, b"".join(lines))
                count += len(lines)
        self._notify(records)
        return count

    def finish_torn(self) -> None:
        """Nothing to finish: a spooled part that failed mid-write is closed and re-read by
        compaction, which skips a torn line."""

    def _write(self, day: str, data: bytes) -> None:
        if os.getpid() != self._pid:  # forked: own token, own parts, own upload thread
            self._start()
        part = self._parts.get(day)
        if part is None:
            self._seq += 1
            folder = _day_dir(self._open_dir, day)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{self._token}-{self._seq:06d}.jsonl"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            part = self._parts[day] = _Part(path, fd, time.time())
        view = memoryview(data)
        while view:
            written = os.write(part.fd, view)
            view = view[written:]
        part.size += len(data)
        if part.size >= self.location.part_bytes:
            self._close_part(day)
            self._wake.set()

    def _close_part(self, day: str) -> None:
        """Close a part and move it to ``ready/`` (caller holds the lock)."""
        part = self._parts.pop(day)
        os.close(part.fd)
        target = _day_dir(self._ready_dir, day) / part.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part.path, target)
        self._born[str(target)] = part.born

    def _rotate(self, *, all_parts: bool = False) -> None:
        now = time.time()
        with self._lock:
            if os.getpid() != self._pid:
                return
            for day in list(self._parts):
                if all_parts or now - self._parts[day].born >= self.location.part_seconds:
                    self._close_part(day)

    def _recover(self) -> None:
        """Open parts of processes on this machine that are gone become ready parts."""
        host = socket.gethostname()
        found = sorted(self._open_dir.glob("date=*/*.jsonl")) if self._open_dir.exists() else []
        for path in found:
            parts = path.stem.rsplit("-", 3)
            if len(parts) != 4 or parts[0] != host or not parts[1].isdigit():
                continue
            if _alive(int(parts[1])):
                continue
            target = _day_dir(self._ready_dir, path.parent.name[5:]) / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(path, target)
            except FileNotFoundError:  # another process recovered it first
                continue

    # --- uploading ---------------------------------------------------------------------
    def _ready(self) -> list[Path]:
        if not self._ready_dir.exists():
            return []
        return sorted(self._ready_dir.glob("date=*/*.jsonl"))

    def upload_ready(self) -> bool:
        """Upload every ready part; True when none is left. Stops at the first failure."""
        for path in self._ready():
            day = path.parent.name
            target = self.location.sub("jsonl", day, path.name + ".zst")
            try:
                size = path.stat().st_size
                if size == 0:
                    path.unlink()
                    continue
                self.location.upload(path, target, compressed=True)
            except FileNotFoundError:  # uploaded and removed by another process
                continue
            except Exception as exc:
                self._counts["upload_errors"] += 1
                self.last_upload_error = str(exc)
                log.warning("log upload of %s failed (kept for retry): %s", path.name, exc)
                return False
            born = self._born.pop(str(path), None)
            try:
                if born is None:
                    born = path.stat().st_mtime
                path.unlink()
            except FileNotFoundError:
                pass
            self._counts["uploaded_parts"] += 1
            self.last_upload_lag_s = max(0.0, time.time() - (born or time.time()))
        return True

    def _upload_loop(self) -> None:
        pause = 0.0
        tick = min(1.0, self.location.part_seconds / 4)
        while not self._stop.is_set():
            self._wake.wait(timeout=max(tick, pause))
            self._wake.clear()
            if self._stop.is_set():
                return
            self._rotate()
            if self.upload_ready():
                pause = 0.0
            else:
                pause = min(30.0, max(0.5, pause * 2))

    def stats(self) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            born = [p.born for p in self._parts.values()]
            open_parts = len(self._parts)
        ready = self._ready()
        for path in ready:
            b = self._born.get(str(path))
            if b is None:
                try:
                    b = path.stat().st_mtime
                except FileNotFoundError:
                    continue
            born.append(b)
        return {
            "parts_pending": open_parts + len(ready),
            "upload_lag_s": round(max(0.0, now - min(born)), 3) if born else 0.0,
            "last_upload_lag_s": round(self.last_upload_lag_s, 3),
            "uploaded_parts": self._counts["uploaded_parts"],
            "upload_errors": self._counts["upload_errors"],
            "last_upload_error": self.last_upload_error,
        }

    def close(self, attempts: int = 3) -> None:
        """Close every part and upload what is ready (a few tries). Parts the bucket did not
        take stay in the spool; the next writer on this machine uploads them."""
        if self._closed:
            return
        self._closed = True
        self._rotate(all_parts=True)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=35)  # at most one upload in flight (its own timeouts)
        pause = 0.25
        for i in range(max(1, attempts)):
            if self.upload_ready():
                return
            if i + 1 < attempts:
                time.sleep(pause)
                pause *= 2
        log.warning(
            "%d log part(s) could not be uploaded to %s and stay in %s (%s); they are uploaded "
            "on the next start",
            len(self._ready()),
            self.location,
            self._ready_dir,
            self.last_upload_error,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _PartialWrite(Exception):
    def __init__(self, sent: int, cause: OSError):
        self.sent, self.cause = sent, cause


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:  # os.write may write less than asked (a nearly full disk, a signal)
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise _PartialWrite(len(data) - len(view), exc) from exc


def _lock_file(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def _unlock_file(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _is_file_at(fd: int, path: Path | str) -> bool:
    """Whether the open file is still the one at ``path`` (not removed, not moved away)."""
    st = os.fstat(fd)
    if st.st_nlink == 0:
        return False
    try:
        at = os.stat(path)
    except FileNotFoundError:
        return False
    return (at.st_dev, at.st_ino) == (st.st_dev, st.st_ino)


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


def jsonl_files(log_dir: LogDir, *, before: date | None = None) -> list[Any]:
    """The JSONL files (``Path`` in a folder, ``PurePosixPath`` in a bucket), sorted."""
    if is_s3(log_dir):
        files = location(log_dir).files("jsonl", JSONL_SUFFIXES)
        if before is None:
            return files
        return [p for p in files if p.parent.name[5:] < before.isoformat()]
    root = jsonl_root(_folder(log_dir))
    if not root.exists():
        return []
    out = []
    for folder in sorted(root.glob("date=*")):
        if before is None or folder.name[5:] < before.isoformat():
            out.extend(
                sorted(p for p in folder.glob("*.jsonl*") if p.name.endswith(JSONL_SUFFIXES))
            )
    return out


def parquet_files(log_dir: LogDir) -> list[Any]:
    if is_s3(log_dir):
        return location(log_dir).files("parquet", ".parquet")
    root = parquet_root(_folder(log_dir))
    return sorted(root.glob("date=*/*.parquet")) if root.exists() else []


def _folder(log_dir: LogDir) -> Path:
    return log_dir.root if isinstance(log_dir, FolderLocation) else Path(log_dir)  # type: ignore[union-attr,arg-type]


def read_jsonl(
    path: Any, report: ReadReport | None = None, log_dir: LogDir | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the valid records of one file; bad lines go to ``report`` with their reason.
    ``log_dir`` is needed for a file in a bucket (it says how to reach it)."""
    for rec, _raw in _read_jsonl_lines(path, report, log_dir):
        yield rec


def _read_jsonl_lines(
    path: Any, report: ReadReport | None = None, log_dir: LogDir | None = None
) -> Iterator[tuple[dict[str, Any], bytes]]:
    try:
        if log_dir is not None and is_s3(log_dir):
            lines = location(log_dir).read_bytes(path).split(b"\n")
        else:
            lines = FolderLocation(Path(path).parent).read_bytes(path).split(b"\n")
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
            obj = logrecord.loads(raw)
        except RecordError as exc:
            if report is not None:
                reason = str(exc)
                if reason.startswith("not valid JSON") or reason.startswith("not valid UTF-8"):
                    reason = f"{reason}: torn or corrupt"
                report.bad.append(BadLine(str(path), i + 1, reason))
                report.torn_tail += i == last
            continue
        try:
            rec = logrecord.validate(obj)
        except RecordError as exc:
            if report is not None:
                report.bad.append(BadLine(str(path), i + 1, str(exc)))
            continue
        if report is not None:
            report.records += 1
        yield rec, raw


class LogReadError(ShadowTutorError, OSError):
    """A log file that cannot be read (a truncated or corrupt Parquet part)."""


def _parquet_unreadable(path: Path, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"Parquet part cannot be read ({first}); it is truncated or corrupt: restore it from a "
        "backup, or move it out of the log folder and re-import its data"
    )


def _connect(log_dir: LogDir) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if is_s3(log_dir):
        location(log_dir).prepare(con)
    return con


def iter_records(log_dir: LogDir, report: ReadReport | None = None) -> Iterator[dict[str, Any]]:
    """Every record in the log (JSONL then Parquet), validated.

    An unreadable Parquet part is a bad entry in ``report`` (line 0); without a report it
    raises :class:`LogReadError`.
    """
    for path in jsonl_files(log_dir):
        yield from read_jsonl(path, report, log_dir)
    files = parquet_files(log_dir)
    con = _connect(log_dir) if files else None
    for path in files:
        try:
            cur = con.execute(f"SELECT * FROM read_parquet({_sql_list([path], log_dir)})")
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


def _sql_list(paths: Iterable[Any], log_dir: LogDir | None = None) -> str:
    url = location(log_dir).url if log_dir is not None and is_s3(log_dir) else str
    return "[" + ", ".join("'" + url(p).replace("'", "''") + "'" for p in paths) + "]"


def _read_json_sql(paths: Iterable[Any], log_dir: LogDir | None = None) -> str:
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in RAW_COLUMNS.items()) + "}"
    return (
        f"read_json({_sql_list(paths, log_dir)}, format='newline_delimited', columns={cols}, "
        "ignore_errors=true, maximum_object_size=67108864)"
    )


# The JSONL lines the queries read: those :func:`logrecord.validate` would accept, as far as
# SQL can tell (Parquet parts hold only validated records). A line it rejects (a
# `schema_version: 3`, no messages, no teacher answer) is counted by `logs validate` and
# quarantined by `logs compact`, never counted by the dashboards.
VALID_JSONL = (
    "id IS NOT NULL AND length(id) <= {max_id} AND coalesce(schema_version, 1) IN (1, 2) "
    "AND try_cast(left(replace(ts, 'T', ' '), 23) AS TIMESTAMP) IS NOT NULL "
    "AND json_type(messages) = 'ARRAY' AND json_array_length(messages) > 0 "
    "AND teacher.model IS NOT NULL AND teacher.model <> '' "
    "AND (teacher.response IS NOT NULL OR coalesce(teacher.error, '') <> '') "
    "AND (source IS NULL OR source IN ({sources})) "
    "AND (similarity.score IS NULL OR similarity.score BETWEEN 0 AND 1)"
).format(max_id=logrecord.MAX_ID_LENGTH, sources=", ".join(f"'{s}'" for s in logrecord.SOURCES))


def raw_select(log_dir: LogDir, listing: tuple[list[Any], list[Any]] | None = None) -> str:
    """SQL selecting every valid raw record (JSONL and Parquet together); empty when none.
    ``listing``: the log's (JSONL, Parquet) files if the caller has just listed them.
    For a bucket, the connection must have been prepared (:func:`create_views` does it)."""
    parts = []
    jsonl, parquet = listing or (jsonl_files(log_dir), parquet_files(log_dir))
    if jsonl:
        parts.append(f"SELECT * FROM {_read_json_sql(jsonl, log_dir)} WHERE {VALID_JSONL}")
    if parquet:
        parts.append(f"SELECT * FROM read_parquet({_sql_list(parquet, log_dir)})")
    # Always the full column set, so a log of version 1 Parquet parts (no `request_id`,
    # `student_name`) reads with those columns NULL.
    cols = ", ".join(f"CAST(NULL AS {t}) AS {k}" for k, t in RAW_COLUMNS.items())
    return " UNION ALL BY NAME ".join([f"SELECT {cols} WHERE false", *parts])


def create_views(
    con: duckdb.DuckDBPyConnection,
    log_dir: LogDir,
    listing: tuple[list[Any], list[Any]] | None = None,
) -> None:
    """Create (or replace) the views ``raw_pairs`` and ``pairs`` on a DuckDB connection
    (over ``listing``, the (JSONL, Parquet) files just listed, or a fresh listing)."""
    if is_s3(log_dir):
        location(log_dir).prepare(con)
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw_pairs AS {raw_select(log_dir, listing)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW pairs AS {FLAT_SELECT} FROM raw_pairs")


def known_ids(log_dir: LogDir) -> set[str]:
    con = _connect(log_dir)
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
    log_dir: LogDir,
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
            except (ValueError, TypeError, OverflowError) as exc:  # never stop at one line
                report.bad.append(BadLine(str(path), line_no, f"cannot be read ({exc})"))
                continue
            if rec["id"] in seen:
                report.duplicates += 1
                continue
            if source:
                rec["source"] = source
            if teacher_model and rec["teacher"]["model"] == "unknown":
                rec["teacher"]["model"] = teacher_model
            # a raw conversation id (an e-mail, say) is never stored: pseudonymised like users
            rec["conversation_id"] = logrecord.pseudonymize_conversation(rec["conversation_id"])
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
    bad: list[BadLine] = field(default_factory=list)  # each bad line: file, number, reason
    problems: list[str] = field(default_factory=list)


def compact(log_dir: LogDir, *, today: date | None = None) -> CompactReport:
    """Turn every closed day's JSONL files into one Parquet part.

    The JSONL files are removed only after the Parquet part is in place (a folder: written to
    a temporary name, then renamed; a bucket: written locally, then uploaded in one PUT) and
    holds exactly the good, not-yet-compacted records they contained. A re-run after a crash
    finds the part by its name (a hash of the source files and their ids) and only finishes
    the removal. Writers may keep running. Lines the validator rejects never reach Parquet:
    each is named in ``bad`` and its file is moved to ``quarantine/``; the day is compacted
    all the same.
    """
    today = today or datetime.now(UTC).date()
    report = CompactReport()
    by_day: dict[str, list[Any]] = {}
    for path in jsonl_files(log_dir, before=today):
        by_day.setdefault(path.parent.name[5:], []).append(path)
    for day, files in sorted(by_day.items()):
        if is_s3(log_dir):
            _compact_day_bucket(location(log_dir), day, files, report)  # type: ignore[arg-type]
        else:
            _compact_day(_folder(log_dir), day, files, report)
    return report


def _part_name(files: list[Any]) -> str:
    digest = hashlib.sha256("\n".join(f.name for f in files).encode()).hexdigest()[:16]
    return f"part-{digest}.parquet"


def _compact_day(log_dir: Path, day: str, files: list[Path], report: CompactReport) -> None:
    # Lock every file of the day (writers take the same lock for each write and, finding the
    # file gone afterwards, start a new one), so no line lands in a file being removed.
    locks = []
    held = []
    try:
        for f in files:
            try:
                fd = os.open(f, os.O_RDONLY)
            except FileNotFoundError:  # removed by a concurrent compaction
                continue
            locks.append(fd)
            _lock_file(fd)
            if _is_file_at(fd, f):
                held.append(f)
        _compact_locked_day(log_dir, day, held, report)
    finally:
        for fd in locks:
            _unlock_file(fd)
            os.close(fd)


def _compact_locked_day(log_dir: Path, day: str, files: list[Path], report: CompactReport) -> None:
    if not files:
        return
    out_dir = _day_dir(parquet_root(log_dir), day)
    out_dir.mkdir(parents=True, exist_ok=True)
    read = ReadReport()
    good_ids: set[str] = set()
    # Only records the validator accepts go into Parquet (a line it rejects, say a
    # `schema_version: 3`, is named and quarantined with its file): the part is written from
    # a file of the validated lines, so its row count always matches theirs.
    valid = out_dir / f".{day}-{uuid.uuid4().hex[:8]}.validated.jsonl.tmp"
    try:
        with open(valid, "wb") as out:
            for f in files:
                for rec, _raw in _read_jsonl_lines(f, read):
                    good_ids.add(rec["id"])
                    out.write(logrecord.dump_line(rec))
        # The part's name is a hash of the files and the ids they hold: a re-run after a
        # crash finds it and only finishes the removal, and lines written to a day after its
        # compaction (a new file of the same name) never take the earlier part's name.
        digest = hashlib.sha256(
            "\n".join([*(f.name for f in files), "", *sorted(good_ids)]).encode()
        ).hexdigest()[:16]
        target = out_dir / f"part-{digest}.parquet"
        others = [p for p in out_dir.glob("*.parquet") if p != target]
        expected = len(good_ids - known_ids_in(others))
        report.bad_lines += len(read.bad)
        report.bad.extend(read.bad)
        report.duplicates_skipped += read.records - expected
        con = duckdb.connect()
        if not target.exists() and expected:
            tmp = target.with_suffix(".parquet.tmp")
            excluded = ""
            if others:
                excluded = f"AND id NOT IN (SELECT id FROM read_parquet({_sql_list(others)}))"
            con.execute(
                f"COPY (SELECT * FROM {_read_json_sql([valid])} WHERE id IS NOT NULL "
                f"{excluded} QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts) = 1 "
                f"ORDER BY ts) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)"
            )
            os.replace(tmp, target)
        written = 0
        if target.exists():
            written = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0]
        if written != expected:
            target.unlink()
            report.problems.append(
                f"{day}: Parquet part has {written} rows but the JSONL files hold {expected} "
                "good records; JSONL kept, nothing removed"
            )
            return
    finally:
        valid.unlink(missing_ok=True)
    damaged = {b.path for b in read.bad}
    for f in files:
        if str(f) in damaged:  # keep the bytes we could not read, out of the readers' way
            keep = _day_dir(Path(log_dir) / "quarantine", day)
            keep.mkdir(parents=True, exist_ok=True)
            dest = keep / f.name
            n = 1
            while dest.exists():  # a writer may reuse a file name after a compaction
                dest = keep / f"{f.stem}.{n}{f.suffix}"
                n += 1
            os.replace(f, dest)
            report.quarantined.append(str(dest))
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


def _compact_day_bucket(loc: S3Location, day: str, files: list[Any], report: CompactReport) -> None:
    """The same steps in a bucket: the part is built locally, uploaded, counted back from the
    bucket, and only then are the JSONL parts deleted (or moved to ``quarantine/``)."""
    target = loc.sub("parquet", f"date={day}", _part_name(files))
    others = [p for p in loc.files("parquet", ".parquet") if p.parent.name == f"date={day}"]
    others = [p for p in others if p != target]
    con = _connect(loc)
    existing: set[str] = set()
    if others:
        rows = con.execute(f"SELECT id FROM read_parquet({_sql_list(others, loc)})").fetchall()
        existing = {r[0] for r in rows}
    read = ReadReport()
    good_ids: set[str] = set()
    for rec in (r for f in files for r in read_jsonl(f, read, loc)):
        good_ids.add(rec["id"])
    unreadable = {b.path for b in read.bad if b.line_no == 0}  # a part that does not decompress
    readable = [f for f in files if str(f) not in unreadable]
    expected = len(good_ids - existing)
    report.bad_lines += len(read.bad)
    report.duplicates_skipped += read.records - expected
    if readable and not loc.exists(target):
        excluded = ""
        if others:
            excluded = f"AND id NOT IN (SELECT id FROM read_parquet({_sql_list(others, loc)}))"
        with tempfile.TemporaryDirectory(prefix="shadowtutor-compact-") as tmpdir:
            tmp = Path(tmpdir) / target.name
            con.execute(
                f"COPY (SELECT * FROM {_read_json_sql(readable, loc)} WHERE id IS NOT NULL "
                f"{excluded} QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts) = 1 "
                f"ORDER BY ts) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)"
            )
            loc.upload(tmp, target)
    written = 0
    if readable:
        written = con.execute(f"SELECT count(*) FROM read_parquet('{loc.url(target)}')").fetchone()[
            0
        ]
    if written != expected:
        if readable:
            loc.delete(target)
        report.problems.append(
            f"{day}: Parquet part has {written} rows but the JSONL parts hold {expected} good "
            "records; JSONL kept, nothing removed"
        )
        return
    damaged = {b.path for b in read.bad}
    for f in files:
        try:
            if str(f) in damaged:
                keep = loc.sub("quarantine", f"date={day}", f.name)
                loc.move(f, keep)
                report.quarantined.append(f"{S3_URL}{keep}")
            else:
                loc.delete(f)
        except FileNotFoundError:  # a concurrent compaction removed it first
            pass
        report.files_removed += 1
    report.days.append(day)
    report.rows_written += written


def known_ids_in(parquet: list[Path]) -> set[str]:
    if not parquet:
        return set()
    rows = duckdb.connect().execute(f"SELECT id FROM read_parquet({_sql_list(parquet)})")
    return {r[0] for r in rows.fetchall()}

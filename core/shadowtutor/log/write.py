"""Writing the shadow log: :class:`LogWriter` appends to a folder, :class:`SpoolWriter` spools
parts for a bucket and uploads them.

Layout of a folder::

    jsonl/date=YYYY-MM-DD/<host>-<pid>-<token>.jsonl    one file per day and writer process

A writer only ever appends whole lines to its own file, so many processes can write at once
and a crash can at worst leave one torn last line, which readers skip and count. The date
partition is the record's own UTC date, so replays and imports of old data land where they
belong.

Object storage has no append, so there each writer process spools to local part files under
the same crash rules (:class:`SpoolWriter`), closes a part at a size or an age and uploads it
zstd-compressed as ``jsonl/date=YYYY-MM-DD/<host>-<pid>-<token>-<seq>.jsonl.zst``; the local
file is deleted only once the bucket reports the object with the size that was sent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shadowtutor.log import bucket, schema, storage
from shadowtutor.log.errors import LogWriteError
from shadowtutor.log.storage import LogDir

log = logging.getLogger("shadowtutor.log")


def _token() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class LogWriter:
    """Appends records to this process's file for each day. Thread-safe.

    Each call writes its lines with ``os.write`` on an ``O_APPEND`` descriptor under the
    writer's lock, so lines from threads never interleave and a crash leaves at most one torn
    line. A write that fails part way (disk full) is resumed, never repeated: the rest of the
    torn line is written first on the next call, so no line is doubled or broken.

    While writing, the file is locked (``flock``) and checked to still be the day's file:
    compaction (:mod:`shadowtutor.log.compaction`) takes the same lock before it reads a file
    and removes the file before releasing it, so lines written after a day was compacted go
    to a new file, never to a deleted one.

    ``LogWriter(storage)`` for storage without append (a bucket) gives a :class:`SpoolWriter`
    (same API). Functions in
    ``listeners`` are called with each batch once it is written (the metrics use this).
    """

    def __new__(cls, log_dir: LogDir, *args: Any, **kwargs: Any) -> LogWriter:
        if cls is LogWriter and not storage.resolve(log_dir).appends:
            return super().__new__(SpoolWriter)
        return super().__new__(cls)

    def __init__(self, log_dir: LogDir, part: str = "jsonl"):
        self.log_dir = Path(storage.resolve(log_dir).root)
        self.part = part  # the log's folder of this kind of record (feedback: its own)
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
                self.log_dir / self.part / f"date={day}" / f"{self._token}.jsonl"
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
            storage.lock_file(fd)
            if storage.is_file_at(fd, path):
                return fd
            # compacted (removed) or quarantined (moved) since the last write: a new file
            storage.unlock_file(fd)
            os.close(fd)
            del self._fds[day]

    def append(self, record: dict[str, Any]) -> None:
        self.append_many([record])

    def append_many(self, records: Iterable[dict[str, Any]]) -> int:
        """Write the records in order; returns how many. On an OSError part way, raises
        :class:`LogWriteError` saying how many were taken (see there)."""
        records = records if isinstance(records, list) else list(records)
        lines = [(rec["ts"][:10], schema.dump_line(rec)) for rec in records]
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
                rest = line[sent:] if torn_file == storage.identity(fd) else line
                try:
                    _write_all(fd, rest)
                except _PartialWrite as exc:
                    self._torn[day] = (line, len(line) - len(rest) + exc.sent, storage.identity(fd))
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
                        self._torn[day] = (line, exc.sent - offset, storage.identity(fd))
                        done += 1
                    break
                raise LogWriteError(before + done, exc.cause) from exc.cause
            return len(lines)
        finally:
            storage.unlock_file(fd)

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

    def __init__(self, log_dir: LogDir, part: str = "jsonl"):
        loc = storage.resolve(log_dir)
        assert isinstance(loc, bucket.S3Storage)
        self.location = loc
        self.log_dir = loc  # type: ignore[assignment]
        self.part = part
        self._lock = threading.Lock()
        self.listeners = []
        spool = loc.spool if part == "jsonl" else loc.spool / part  # each part its own spool
        self._open_dir = spool / "open"
        self._ready_dir = spool / "ready"
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
            by_day.setdefault(rec["ts"][:10], []).append(schema.dump_line(rec))
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
            folder = self._open_dir / f"date={day}"
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
        target = self._ready_dir / f"date={day}" / part.path.name
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
            if storage.process_alive(int(parts[1])):
                continue
            target = self._ready_dir / path.parent.name / path.name
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
            target = self.location.sub(self.part, day, path.name + ".zst")
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

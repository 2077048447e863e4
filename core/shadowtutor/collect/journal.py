"""The collector's journal: the teacher's answers of queued jobs, on disk within ~20 ms.

The queue between the request path and the workers lives in memory, so a ``kill -9`` (or a
stop past the flush timeout) would lose every job still in it. The teacher's answer is known
when the job is queued, so the request path also hands the job to the journal (a deque
append: nothing on the request thread touches the disk; in the companion process, whose
threads are not the app's, ``inline`` writes it at once instead); a background thread writes what
arrived to ``<log>/journal/<writer>.jsonl`` ``INTERVAL_S`` after the first of them (group
commit), and later appends the ids whose records reached the log (with the next group, or
within ``DONE_LAG_S``). A written group is in the kernel's page cache, which outlives the
process: a ``kill -9``, an OOM kill or a crash of the process can therefore miss at most the
last ~``INTERVAL_S`` of answers. Against a power cut the journal is ``fdatasync``ed at most once
every ``SYNC_S`` (and at close), like the log itself, which is not synced per write either: a
sync per group cost ~0.3 ms of CPU per request at low load and bought no more than that, since
the records it guards go to an unsynced log. An idle journal sleeps: no timer wakes it (a 20 ms
poll cost an idle proxy 9 ms of CPU a second).

The next collector on the same log folder finds journals whose owner is gone (each live
journal holds an exclusive ``flock``), writes their pending jobs to the log (the student side
says it was not asked; the teacher side is the journaled answer), skipping ids the log already
holds, counts them in ``stats()["recovered"]`` and removes the journal. A journal is rotated
every ``ROTATE_S`` and a rotated one is removed once all its jobs are logged.

Line format: ``{"j": {job fields}}`` for a queued job, ``{"d": [ids]}`` for logged ones.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from shadowtutor import fastjson
from shadowtutor.backends import Answer
from shadowtutor.collect.job import Job, route_of, wire_fields
from shadowtutor.errors import error_text
from shadowtutor.log import schema
from shadowtutor.log.read import jsonl_root, known_ids_in, parquet_root, tail_ids

log = logging.getLogger(__name__)

INTERVAL_S = 0.02
DONE_LAG_S = 1.0  # logged ids wait at most this long for a group to ride with
SYNC_S = 1.0  # a written journal reaches the disk within this (a power cut; see above)
ROTATE_S = 60.0
NOT_ASKED = (
    "not asked: the process stopped before the student answered (recovered from the journal)"
)
TEACHER_NOT_ASKED = "not asked: the process stopped before the teacher answered in the background"


def journal_dir(log_dir: Any) -> Path:
    """``<log>/journal`` for a folder; for a bucket, the writers' local spool (a journal is a
    crash guard for this machine, never shared)."""
    spool = getattr(log_dir, "spool", None)
    return Path(spool if spool is not None else log_dir) / "journal"


def _teacher_fields(job: Job) -> dict[str, Any] | None:
    """The teacher's answer fields as the record will hold them; None while a background
    teacher call is still to be made."""
    try:
        return job.teacher_fields()
    except Exception as exc:
        return {"error": error_text(exc)}


def encode(job: Job) -> dict[str, Any]:
    """A JSON-able copy of what a job needs to become its record without the student."""
    return wire_fields(job) | {
        "ts": schema.format_ts(job.ts) if job.ts else None,
        "teacher": _teacher_fields(job),
        "student_result": asdict(job.student_result) if job.student_result else None,
    }


def decode(entry: dict[str, Any]) -> Job:
    """The job of a journal entry, ready for :meth:`Work.records_of` (no student call)."""
    result = entry.get("student_result")
    route = entry.get("route")
    teacher = entry.get("teacher")
    if teacher is None:
        teacher = {"error": TEACHER_NOT_ASKED}
    elif teacher.get("response") is None and teacher.get("error") is None:
        teacher = teacher | {"error": "no teacher answer in the journal entry"}
    return Job(
        messages=entry["messages"],
        source=entry.get("source") or "live",
        id=entry["id"],
        ts=schema.parse_ts(entry["ts"]) if entry.get("ts") else None,
        user_hash=entry.get("user_hash"),
        conversation_id=entry.get("conversation_id"),
        category=entry.get("category"),
        language=entry.get("language"),
        category_detected=bool(entry.get("category_detected")),
        metadata=dict(entry.get("metadata") or {}) | {"recovered_from_journal": True},
        route=route_of(route),
        options=dict(entry.get("options") or {}),
        kind=entry.get("kind") or "plain",
        protocol=entry.get("protocol") or "openai.chat",
        features=dict(entry.get("features") or {}),
        teacher=teacher,
        teacher_latency_ms=entry.get("teacher_latency_ms"),
        teacher_ttft_ms=entry.get("teacher_ttft_ms"),
        student_result=Answer(**result) if result else None,
        student_error=None if result else (entry.get("student_error") or NOT_ASKED),
    )


class Journal:
    """One writer process's journal (see the module docstring)."""

    def __init__(
        self, folder: Path, token: str, interval_s: float = INTERVAL_S, inline: bool = False
    ):
        self.folder = Path(folder)
        self.token = token
        self.interval_s = interval_s
        self._incoming: deque[Job] = deque()
        self._done: deque[str] = deque()
        self._lock = threading.Lock()  # file state: current fd, outstanding counts
        self._file_of: dict[str, int] = {}
        self._outstanding: Counter[int] = Counter()
        self._files: dict[int, tuple[Path, int]] = {}  # number -> (path, fd)
        self._current = -1
        self._opened_at = 0.0
        self._dirty: set[int] = set()  # files written since their last fdatasync
        self._synced_at = time.monotonic()
        self.write_errors = 0
        self.last_error: str | None = None
        # Called with the jobs of each commit once they are on disk (the companion's ack).
        self.on_commit: Callable[[list[Job]], None] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by add(): a group is gathering
        # inline: add() and done() write at once on the caller's thread (the companion's
        # reader and writer threads, never an app's request thread): no thread to wake per
        # job, which on a VM cost ~0.5 ms of CPU a request at low load.
        self.inline = inline
        self._thread = threading.Thread(target=self._loop, name="shadow-journal", daemon=True)
        if not inline:
            self._thread.start()

    # --- called by the collector -----------------------------------------------------------
    def add(self, job: Job) -> None:
        """Request path: O(1), no I/O (inline: written now)."""
        self._incoming.append(job)
        if self.inline:
            self._commit()
        elif not self._wake.is_set():
            self._wake.set()

    def done(self, ids: list[str]) -> None:
        """These jobs' records are in the log (or they were counted as lost)."""
        self._done.extend(ids)
        if self.inline:
            self._commit()

    def pending(self) -> int:
        """Jobs journaled or arriving, whose records are not logged yet."""
        with self._lock:
            return sum(self._outstanding.values()) + len(self._incoming) - len(self._done)

    def close(self) -> int:
        """Write what is left; remove the journal when nothing is pending. Returns how many
        jobs stay pending (their journal is kept for the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._commit()
        with self._lock:
            self._sync(force=True)
            left = sum(self._outstanding.values())
            for number, (path, fd) in list(self._files.items()):
                if self._outstanding[number] == 0:
                    path.unlink(missing_ok=True)
                os.close(fd)  # releases the lock: the next start recovers what is left
            self._files.clear()
        return left

    # --- the background thread -------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            # Asleep until a job arrives (or logged ids or an unsynced write have waited
            # DONE_LAG_S), then the group gathers for interval_s and is written at once.
            self._wake.wait(DONE_LAG_S if self._done or self._dirty else None)
            if self._stop.wait(self.interval_s):
                return  # close() commits what is left
            self._wake.clear()
            self._commit()

    def _commit(self) -> None:
        if not self._incoming and not self._done and not self._dirty:
            return
        try:
            with self._lock:
                jobs = [self._incoming.popleft() for _ in range(len(self._incoming))]
                done = [self._done.popleft() for _ in range(len(self._done))]
                self._write(jobs, done)
                self._sync()
        except Exception as exc:  # a full or broken disk: counted, the queue goes on
            self.write_errors += 1
            self.last_error = f"journal write to {self.folder} failed: {exc}"
            log.warning("%s", self.last_error)
            return
        if jobs and self.on_commit is not None:
            self.on_commit(jobs)

    def _write(self, jobs: list[Job], done: list[str]) -> None:
        if jobs and (self._current < 0 or time.monotonic() - self._opened_at >= ROTATE_S):
            self._rotate()
        lines = [fastjson.dumps({"j": encode(job)}, default=str).decode() for job in jobs]
        for job in jobs:
            self._file_of[job.id or ""] = self._current
            self._outstanding[self._current] += 1
        by_file: dict[int, list[str]] = {}
        for id_ in done:
            number = self._file_of.pop(id_, None)
            if number is not None:
                by_file.setdefault(number, []).append(id_)
        if lines:
            by_file.setdefault(self._current, [])
        for number, ids in by_file.items():
            path, fd = self._files[number]
            chunk = (lines if number == self._current else []) + (
                [fastjson.dumps({"d": ids}).decode()] if ids else []
            )
            if chunk:
                os.write(fd, ("\n".join(chunk) + "\n").encode())
                self._dirty.add(number)
            self._outstanding[number] -= len(ids)
            if number != self._current and self._outstanding[number] <= 0:
                os.close(fd)
                path.unlink(missing_ok=True)
                del self._files[number], self._outstanding[number]
                self._dirty.discard(number)

    def _sync(self, force: bool = False) -> None:
        """``fdatasync`` the written files, at most once every ``SYNC_S`` unless ``force``."""
        if not self._dirty or (not force and time.monotonic() - self._synced_at < SYNC_S):
            return
        for number in self._dirty:
            if number in self._files:
                os.fdatasync(self._files[number][1])
        self._dirty.clear()
        self._synced_at = time.monotonic()

    def _rotate(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._current += 1
        path = self.folder / f"{self.token}-{self._current:05d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._files[self._current] = (path, fd)
        self._opened_at = time.monotonic()
        for number, (old_path, old_fd) in list(self._files.items()):
            if number != self._current and self._outstanding[number] <= 0:
                os.close(old_fd)
                old_path.unlink(missing_ok=True)
                del self._files[number]
                self._dirty.discard(number)


def orphaned(folder: Path) -> list[Path]:
    """Journals whose writer is gone (no process holds their lock)."""
    found = []
    for path in sorted(Path(folder).glob("*.jsonl")) if Path(folder).is_dir() else []:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live writer holds it
        finally:
            os.close(fd)
        found.append(path)
    return found


def pending_entries(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The journal's jobs that never reached the log, and the number of unreadable lines (a
    line torn by the crash is the only expected one)."""
    entries: dict[str, dict[str, Any]] = {}
    bad = 0
    with open(path, "rb") as f:
        for raw in f:
            try:
                obj = json.loads(raw)
            except ValueError:
                bad += 1
                continue
            if "j" in obj:
                entries[obj["j"]["id"]] = obj["j"]
            for id_ in obj.get("d", ()):
                entries.pop(id_, None)
    return list(entries.values()), bad


def entry_day(entry: dict[str, Any]) -> str | None:
    ts = entry.get("ts")
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).date().isoformat() if ts else None


def logged_ids(log_dir: Any, token: str, entries: list[dict[str, Any]]) -> set[str]:
    """Ids of ``entries`` the dead writer ``token`` already logged: its records reach the log up
    to one journal commit before their done-mark, so the tail of its own files suffices."""
    wanted = {e["id"] for e in entries}
    found: set[str] = set()
    if not isinstance(log_dir, Path):  # a bucket: compaction drops a repeated id
        return found
    for day in {entry_day(e) for e in entries} - {None}:
        path = jsonl_root(log_dir) / f"date={day}" / f"{token}.jsonl"
        if path.exists():
            found |= wanted & tail_ids(path)
        else:  # compacted since: the day's Parquet
            found |= wanted & known_ids_in(
                sorted(parquet_root(log_dir).glob(f"date={day}/*.parquet"))
            )
    return found


def ids_in_log(log_dir: Any, entries: list[dict[str, Any]]) -> set[str]:
    """Ids of ``entries`` any writer already logged (the days' JSONL files, each file's tail,
    and their Parquet): for a spill file, whose frames any child may have logged."""
    wanted = {e["id"] for e in entries}
    found: set[str] = set()
    if not isinstance(log_dir, Path):
        return found
    for day in {entry_day(e) for e in entries} - {None}:
        for path in sorted((jsonl_root(log_dir) / f"date={day}").glob("*.jsonl")):
            found |= wanted & tail_ids(path)
        found |= wanted & known_ids_in(sorted(parquet_root(log_dir).glob(f"date={day}/*.parquet")))
    return found

"""The shadow work in this process: a bounded queue, worker threads and one writer thread.

:meth:`ThreadExecutor.submit` journals the job (see :mod:`shadowtutor.collect.journal`) and
puts it on the queue with ``put_nowait``; when the queue is full the job is dropped and
counted, never waited for. Daemon worker threads run each job's :class:`Work` (students,
records) and hand the records to one writer thread, which appends batches with
:class:`LogWriter` and marks them done in the journal. At start, the journals of writers that
are gone are recovered (their pending jobs logged, never twice).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from shadowtutor.collect import frames, journal, spill
from shadowtutor.collect.counters import Counters
from shadowtutor.collect.job import Job
from shadowtutor.collect.work import Work
from shadowtutor.log.errors import LogWriteError
from shadowtutor.log.write import LogWriter

log = logging.getLogger("shadowtutor.collector")

WRITE_SLICE = 64  # records encoded and written between two GIL hand-offs


class ThreadExecutor:
    """Queue, workers, writer thread and journal of one collector (see the module docstring).

    ``skip``: ids of orphaned journals' jobs the caller handles itself (a dead companion's);
    ``journal_inline``: the companion's child, whose threads are not the app's."""

    def __init__(
        self,
        work: Work,
        counters: Counters,
        writer: LogWriter,
        *,
        log_dir: Any,  # a folder, or a bucket location
        workers: int,
        queue_size: int,
        batch_size: int = 500,
        flush_interval_s: float = 1.0,  # records gather this long: fewer writer wake-ups
        journal_inline: bool = False,
        skip: set[str] | None = None,
    ):
        self.work = work
        self.counters = counters
        self.writer = writer
        self.log_dir = log_dir
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max(1, queue_size))
        self._pending: list[dict[str, Any]] = []
        self._pending_cap = max(10_000, self._queue.maxsize * 10)
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._torn_ids: list[str] = []  # the job of a line a full disk left torn
        self._closed = False
        self._journal = journal.Journal(
            journal.journal_dir(log_dir), writer.token, inline=journal_inline
        )
        self._threads = [
            threading.Thread(target=self._work, name=f"shadow-worker-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        self._threads.append(
            threading.Thread(target=self._write_loop, name="shadow-writer", daemon=True)
        )
        self._recover(skip)
        for t in self._threads:
            t.start()

    @property
    def journal(self) -> journal.Journal:
        return self._journal

    def count(self, name: str, n: int = 1) -> None:
        self.counters.count(name, n)

    def _say(self, error: str) -> None:
        self.counters.last_error = error
        log.warning("%s", error)

    # --- journal recovery ---------------------------------------------------------------------
    def _recover(self, skip: set[str] | None) -> None:
        """Write the pending jobs of journals left by writers that are gone (a crash, a kill -9,
        a stop past the flush timeout), then remove those journals. Never raises. Ids in
        ``skip`` are left to the caller (a dead companion's jobs, processed in full)."""
        seen: set[str] = set()  # the ids of this pass: a spill file may hold them again
        for path in journal.orphaned(self._journal.folder):
            try:
                entries, torn = journal.pending_entries(path)
                entries = [e for e in entries if not skip or e["id"] not in skip]
                seen |= {e["id"] for e in entries}
                token = path.name.rsplit("-", 1)[0]
                logged = journal.logged_ids(self.log_dir, token, entries)
                fresh = [e for e in entries if e["id"] not in logged]
                records = [r for e in fresh for r in self.work.records_of(journal.decode(e))]
                self.writer.append_many(records)
                path.unlink()
            except Exception as exc:  # keep the journal for the next try; say why
                self._say(f"journal recovery from {path}: {exc}")
                continue
            self.count("recovered", len(records))
            self.count("recovered_already_logged", len(entries) - len(fresh))
            if records or torn:
                log.warning(
                    "recovered %d pending answers from %s (%d already logged, %d torn lines)",
                    len(records), path.name, len(entries) - len(fresh), torn,
                )  # fmt: skip
        for path in spill.orphaned(self._journal.folder):
            self._recover_spill(path, seen | (skip or set()))

    def _recover_spill(self, path: Path, seen: set[str]) -> None:
        """A companion's spill file left when its parent and child both died: the frames no
        log file and no journal of this pass hold are logged as journal recovery does."""
        try:
            payloads, torn = spill.read(path)
            entries, lost = [], 1 if torn else 0
            for payload in payloads:
                try:
                    entries.append(journal.encode(frames.decode_job(payload)[0]))
                except Exception:
                    lost += 1
            entries = [e for e in entries if e["id"] not in seen]
            logged = journal.ids_in_log(self.log_dir, entries)
            fresh = [e for e in entries if e["id"] not in logged]
            records = [r for e in fresh for r in self.work.records_of(journal.decode(e))]
            self.writer.append_many(records)
            path.unlink()
        except Exception as exc:  # keep it for the next try; say why
            self._say(f"spill recovery from {path}: {exc}")
            return
        self.count("recovered", len(records))
        self.count("recovered_already_logged", len(entries) - len(fresh))
        if lost:
            self.count("lost", lost)
            self._say(f"{lost} unreadable frames in {path} (a torn last write): lost")
        if records:
            log.warning("recovered %d pending answers from %s", len(records), path.name)

    # --- taking jobs ----------------------------------------------------------------------------
    def submit(
        self, job: Job, *, block: bool = False, timeout: float | None = None, counted: bool = True
    ) -> bool:
        """Journal and queue a job (``counted``: in ``enqueued``; a dead companion's job was
        counted when it was handed over)."""
        if self._closed:
            self.count("dropped")
            return False
        self._journal.add(job)  # before the queue: a worker may finish it at once
        try:
            if block:
                self._queue.put(job, timeout=timeout)
            else:
                self._queue.put_nowait(job)
        except queue.Full:
            self._journal.done([job.id or ""])
            self.count("dropped")
            return False
        if counted:
            self.count("enqueued")
        return True

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                records = self.work.records_of(job)
                if not records:
                    self._journal.done([job.id or ""])
                else:
                    with self._cond:
                        self._pending.extend(records)
                        n = len(self._pending)  # the first records wake a sleeping writer
                        if n >= self.batch_size or n == len(records):
                            self._cond.notify()
            except Exception as exc:  # never let one bad job kill a worker
                self.count("lost")
                self._journal.done([job.id or ""] if job else [])
                self.counters.last_error = f"worker: {exc!r}"
                log.exception("shadow job failed")
            finally:
                self._queue.task_done()

    # --- writing -------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            with self._cond:
                if not (self._pending or self.writer.held or self._closed):
                    self._cond.wait()  # asleep until records arrive: no idle wake-ups
                self._cond.wait(timeout=self.flush_interval_s)  # a batch gathers
                closed = self._closed
            self._write_pending()
            if closed and not self._workers_alive():
                return

    def _workers_alive(self) -> bool:
        return any(t.is_alive() for t in self._threads[:-1])

    def _write_pending(self) -> bool:
        """Write what is pending; on failure keep it (bounded) for the next try."""
        with self._write_lock:  # a flush waits for the writer thread's batch in flight
            return self._write_batch()

    def _write_batch(self) -> bool:
        with self._cond:
            batch, self._pending = self._pending, []
        if not batch and not self.writer.held:
            return True
        written = 0
        try:
            self.writer.finish_torn()  # the rest of a line a failed write left torn
            if self._torn_ids:  # that line is whole now: its job is done
                self._journal.done(self._torn_ids)
                self._torn_ids = []
            # Small slices with a GIL hand-off between them: the app's request thread never
            # waits behind one long JSON-encoding burst of this background thread.
            while written < len(batch):
                part = batch[written : written + WRITE_SLICE]
                try:
                    self.writer.append_many(part)
                except LogWriteError as exc:  # part of the slice is on disk: never re-send it
                    whole = max(0, exc.written - self.writer.held)  # the torn one: when whole
                    self._journal.done([r["id"] for r in part[:whole]])
                    self._torn_ids = [r["id"] for r in part[whole : exc.written]]
                    written += exc.written
                    self.count("logged", exc.written)
                    raise
                written += len(part)
                self._journal.done([r["id"] for r in part])
                self.count("logged", len(part))
                time.sleep(0)
        except Exception as exc:
            self._kept(batch[written:], exc)
            return False
        error = self.counters.last_error
        if error and error.startswith("log write to "):
            self.counters.last_error = None  # recovered: the log is writable again
        return True

    def _kept(self, rest: list[dict[str, Any]], exc: Exception) -> None:
        self.count("write_errors")
        self.counters.last_error = f"log write to {self.log_dir} failed: {exc}"
        log.warning("%s (%d records kept for retry)", self.counters.last_error, len(rest))
        with self._cond:
            self._pending = rest + self._pending
            overflow = len(self._pending) - self._pending_cap
            if overflow > 0:  # oldest go first; counted, never silent
                self._journal.done([r["id"] for r in self._pending[:overflow]])
                del self._pending[:overflow]
                self.count("lost", overflow)

    # --- flush / close ----------------------------------------------------------------------------
    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until queued jobs are processed, then write everything pending."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return self._write_pending()

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, stop the threads, close the journal (what is left in it is counted in
        ``unfinished_at_exit``: the next start on this log logs it). Safe to call twice."""
        if self._closed:
            return True
        done = self.flush(timeout)
        self._closed = self.work.closing = True
        if not done:
            self._drain_without_student()
        for _ in self._threads[:-1]:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        with self._cond:
            self._cond.notify_all()
        done = self._write_pending() and done
        self.writer.close()
        left = self._journal.close()
        if left:
            self.count("unfinished_at_exit", left)
            self._say(
                f"{left} answers were still with the student at shutdown: logged when it "
                f"answers if this process lives on, else by the next start on this log folder "
                f"(kept in {self._journal.folder}); never twice"
            )
        return done and not left

    def _drain_without_student(self) -> None:
        """At shutdown after the flush timeout: log the queued teacher answers without waiting
        for the student (its error says so), so they are not lost with the process."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                if job is None:
                    continue
                if job.student_result is None:
                    job.student_error = "skipped: shut down before the student answered"
                if job.teacher_call is not None:
                    job.teacher_call = None
                    job.teacher = {"error": "skipped: shut down before the teacher answered"}
                records = self.work.records_of(job)
                if records:
                    with self._cond:
                        self._pending.extend(records)
            except Exception as exc:
                self.count("lost")
                self.counters.last_error = f"shutdown: {exc!r}"
            finally:
                self._queue.task_done()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            pending = len(self._pending) + self.writer.held
        return {
            "queue_depth": self._queue.qsize(),
            "unwritten": pending,
            "journal_pending": self._journal.pending(),
            "journal_errors": self._journal.write_errors,
            "last_error": self._journal.last_error,
        }

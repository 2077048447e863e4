"""The companion's child process (``python -m shadowtutor.collect.executors.child``): it reads
job frames from its pipe and runs the same :class:`Work` and :class:`ThreadExecutor` on them
as the app's process would, never a second collector (see
:mod:`shadowtutor.collect.executors.companion` for the guarantees).

It journals every job it reads (inline: its threads are not the app's) and reports back how
many are on disk, with its counters and the latencies of the records it wrote (for the
metrics' histograms), at most once a second (``PUSH_S``) and with each flush reply. It exits
at EOF of its pipe, and when its parent process is gone (a watchdog on ``getppid()``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from shadowtutor import fastjson
from shadowtutor.collect import frames, spill
from shadowtutor.collect.counters import Counters
from shadowtutor.collect.executors.threads import ThreadExecutor
from shadowtutor.collect.job import Job
from shadowtutor.collect.work import Work
from shadowtutor.config import Settings
from shadowtutor.log.write import LogWriter

log = logging.getLogger("shadowtutor.companion")

PUSH_S = 1.0  # the child's stats/ack interval: at most 1 report a second (each wakes two threads)
# The child's scheduling priority: background work, so on a busy box the app's requests get
# the CPU first (a child that falls behind fills its pipe; then jobs are dropped, counted).
NICE = 10


def _read_exact(fd: int, n: int) -> bytes | None:
    parts = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def build(config: dict[str, Any]) -> tuple[Counters, Work, ThreadExecutor]:
    """The child's counters, work and executor, from the parent's configuration frame."""
    settings = Settings(**config["settings"])
    counters = Counters()
    work = Work(settings, counters, record_breaker_skips=config.get("record_breaker_skips", True))
    log_dir = Path(config["log_dir"])
    executor = ThreadExecutor(
        work,
        counters,
        LogWriter(log_dir),
        log_dir=log_dir,
        workers=config["workers"],
        queue_size=config["queue_size"],
        batch_size=config.get("batch_size", 500),
        flush_interval_s=config.get("flush_interval_s", 1.0),
        journal_inline=True,
    )
    return counters, work, executor


class Child:
    def __init__(self, rfd: int, wfd: int):
        self.rfd = rfd
        self.out = os.fdopen(wfd, "wb", buffering=0)
        self.out_lock = threading.Lock()
        self.parent = os.getppid()
        self.committed = 0
        self.skipped = 0  # frames that could not become jobs (counted as lost)
        self.records: list[dict[str, Any]] = []
        self.seen: set[str] = set()  # ids of the jobs read from the pipe
        self.stop = threading.Event()
        self.changed = threading.Event()

    def reply(self, msg: dict[str, Any]) -> None:
        data = fastjson.dumps(msg, default=frames.default) + b"\n"
        with self.out_lock:
            try:
                self.out.write(data)
            except OSError:
                pass  # the parent is gone; we finish and exit all the same

    def stats(self) -> dict[str, Any]:
        return self.work.stats(self.executor.stats())

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        records, self.records = self.records, []
        return {
            "ack": self.committed + self.skipped,
            "stats": self.stats(),
            "records": records,
            **extra,
        }

    def on_commit(self, jobs: list[Job]) -> None:
        self.committed += len(jobs)
        self.changed.set()

    def on_records(self, records: list[dict[str, Any]]) -> None:
        for rec in records:  # what the metrics' histograms read, nothing else
            t, s = rec.get("teacher") or {}, rec.get("student") or {}
            self.records.append(
                {
                    "teacher": {"latency_ms": t.get("latency_ms")},
                    "student": {"latency_ms": s.get("latency_ms"), "error": s.get("error")},
                }
            )
        self.changed.set()

    def push_loop(self) -> None:
        """Report when something happened (at most every PUSH_S); idle, only check that the
        parent lives, once a second."""
        while not self.stop.is_set():
            if not self.changed.wait(1.0):
                if os.getppid() != self.parent:  # the parent died; a leaked pipe end
                    log.warning("companion: parent %d is gone, stopping", self.parent)
                    os.close(self.rfd)  # the read loop ends
                    return
                continue
            if self.stop.wait(PUSH_S):  # gather what else happens meanwhile
                return
            self.changed.clear()
            self.reply(self.snapshot())

    def read_frame(self) -> tuple[int, bytes] | None:
        try:
            head = _read_exact(self.rfd, 5)
        except OSError:
            return None
        if head is None:
            return None
        size, kind = frames.HEAD.unpack(head)
        payload = _read_exact(self.rfd, size - 1)
        return None if payload is None else (kind, payload)

    def run(self) -> int:
        first = self.read_frame()
        if first is None:
            return 0
        config = fastjson.loads(first[1] or b"{}")
        self.counters, self.work, self.executor = build(config)
        self.executor.journal.on_commit = self.on_commit
        self.executor.writer.listeners.append(self.on_records)
        # Its counters at once: what the start recovered is seen in the parent's stats().
        self.reply(self.snapshot(ready=self.executor.writer.token))
        threading.Thread(target=self.push_loop, name="companion-push", daemon=True).start()
        try:
            while (got := self.read_frame()) is not None:
                kind, payload = got
                if kind == frames.JOB[0]:
                    self.job(payload)
                elif kind == frames.FLUSH[0]:
                    req = fastjson.loads(payload)
                    threading.Thread(target=self.flush, args=(req,), daemon=True).start()
        finally:
            spilled = config.get("spill")
            if spilled:
                self.unread_spill(Path(spilled))
            ok = self.executor.close(config.get("close_timeout", 30.0))
            if spilled:
                Path(spilled).unlink(missing_ok=True)  # all of it is logged (or journaled)
            self.work.close()
            self.stop.set()  # close() committed the journal's last lines
            self.reply(self.snapshot(closed=ok))
        return 0

    def job(self, payload: bytes) -> None:
        try:
            job, form = frames.decode_job(payload)
        except Exception as exc:
            self.skipped += 1
            self.counters.count("lost")
            self.counters.last_error = f"companion: unreadable job frame: {exc!r}"
            return
        if job.id:
            self.seen.add(job.id)
        if form != "fields" and (job.teacher or {}).get("error"):
            self.counters.count("teacher_errors")  # a stream that never finished
        # Blocking: the parent already counted the hand-off; a full queue here waits (the
        # pipe and the parent's bounded backlog are the queue the request path sees).
        self.executor.submit(job, block=True)

    def unread_spill(self, path: Path) -> None:
        """At the end of the pipe: the spilled frames this process never read (its parent
        died with them in its backlog) are processed like any job (see
        :mod:`shadowtutor.collect.spill`)."""
        try:
            payloads, torn = spill.read(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.counters.last_error = f"companion: spill file {path}: {exc}"
            log.warning("%s", self.counters.last_error)
            return
        taken = 0
        for payload in payloads:
            try:
                job, _form = frames.decode_job(payload)
            except Exception:
                self.counters.count("lost")
                continue
            if job.id in self.seen:
                continue
            self.seen.add(job.id or "")
            self.counters.count("recovered")
            self.executor.submit(job, block=True)
            taken += 1
        if torn:
            self.counters.count("lost")
        if taken or torn:
            log.warning(
                "companion: %d handed-off answers its parent had not written to the pipe, "
                "taken from %s%s", taken, path, " (and 1 torn frame, lost)" if torn else "",
            )  # fmt: skip

    def flush(self, req: dict[str, Any]) -> None:
        # The child's journal writes inline: once flushed, its lines are already written.
        ok = self.executor.flush(req.get("timeout"))
        self.reply(self.snapshot(flushed=req["n"], ok=ok))


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="companion: %(message)s")
    try:
        os.nice(NICE)
    except OSError:
        pass
    child = Child(int(argv[1]), int(argv[2]))
    try:
        return child.run()
    except Exception as exc:
        child.reply({"error": f"companion failed: {exc!r}"})
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The collector's companion process: the shadow work, out of the app's interpreter.

The app's request path only decides and hands off. With the companion on
(``SHADOWTUTOR_COMPANION=1``, or ``ShadowCollector(companion=True)``; ``shadowtutor proxy``
turns it on unless the setting says ``0``), the hand-off is one ``os.write`` of a pre-encoded
frame to a pipe (non-blocking, 1 MiB of kernel buffer; what does not fit waits in a bounded
backlog that a sender thread writes, and is appended to the spill file at once,
:mod:`shadowtutor.collect.spill`; past that bound the job is dropped and counted). A child
process (:mod:`shadowtutor.collect.executors.child`) reads the frames and runs the same
:class:`~shadowtutor.collect.executors.threads.ThreadExecutor` on them as without the
companion: the per-job :class:`~shadowtutor.collect.work.Work` (student call, similarity,
detection, the record) and the writer, only in another interpreter, so it never competes with
the app's requests for the GIL.

Guarantees, as in-process:

* **journal**: the child journals every job it reads (``<log>/journal``, written inline as
  it reads) and reports back how many are on disk; the parent keeps each frame until then. A
  ``kill -9`` of the app loses nothing handed over: the child drains the pipe to EOF, then
  processes the spilled frames it never read (the backlog's, on disk in the spill file), logs
  it all and exits; when the child is killed too, the next start logs what the spill file and
  the child's journal hold, each once, counted in ``recovered``. A crash of the child makes
  the parent start its in-process workers (``stats()["companion_failures"]``, ``last_error``
  says why), recover the child's journal and process the frames the child had not journaled
  yet: nothing is lost, nothing twice.
* **no orphans**: the child exits at EOF of its pipe (its parent closed it, or died) and also
  when its parent process is gone (a watchdog on ``getppid()``, for a pipe end leaked to a
  forked process).
* **counters**: the child sends its ``stats()`` (and the latencies of the records it wrote,
  for the metrics' histograms) at most once a second (``PUSH_S``) and with each flush reply;
  the parent's ``stats()`` adds them to its own request-path counters.
* **flush / close**: ``flush()`` sends a flush frame behind the jobs and waits for the child's
  answer; ``close()`` ends the pipe, waits for the child to write everything and exit.

Frames: :mod:`shadowtutor.collect.frames`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shadowtutor import fastjson
from shadowtutor.collect import frames, journal, spill
from shadowtutor.collect.counters import ADDED, STAT_KEYS, Counters
from shadowtutor.collect.executors.threads import ThreadExecutor
from shadowtutor.collect.job import Job
from shadowtutor.log.schema import format_ts

log = logging.getLogger("shadowtutor.companion")

PIPE_SIZE = 1 << 20  # asked of the kernel; the hand-off never blocks while this holds
F_SETPIPE_SZ = 1031
CHILD = "shadowtutor.collect.executors.child"  # the module the child process runs

SENT, FULL, DEAD = "sent", "full", "dead"


class Link:
    """The app's end of the companion: the pipe, the unacknowledged frames, the child's
    latest counters. ``on_dead(frames)`` runs (on the reader thread) when the child is gone
    before :meth:`close`, with every frame it had not journaled."""

    def __init__(
        self,
        config: dict[str, Any],
        on_dead: Callable[[list[bytes], str], None],
        on_records: Callable[[list[dict[str, Any]]], None],
        backlog_cap: int = 10_000,
        spill_path: Path | None = None,
    ):
        self.on_dead = on_dead
        self.on_records = on_records
        self.backlog_cap = backlog_cap
        # The backlog's frames on disk (the child inherits the file's lock: it is orphaned
        # only when both are gone).
        self.spill = spill.Spill(spill_path) if spill_path is not None else None
        self._spilled_seq = 0  # the last spilled frame's sequence number
        if self.spill is not None:
            config = config | {"spill": str(self.spill.path)}
        job_r, self._w = os.pipe()
        reply_r, reply_w = os.pipe()
        try:
            fcntl.fcntl(self._w, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # a lower system limit: the kernel's default buffer, and the backlog
            pass
        inherit = (job_r, reply_w) + ((self.spill.fd,) if self.spill is not None else ())
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", CHILD, str(job_r), str(reply_w)],
                pass_fds=inherit,
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except BaseException:
            for fd in (job_r, reply_w, self._w, reply_r):
                os.close(fd)
            if self.spill is not None:
                self.spill.close(remove=True)
            raise
        os.close(job_r)
        os.close(reply_w)
        self._reply = os.fdopen(reply_r, "rb", buffering=1 << 16)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._seq = 0
        self._acked = 0
        self._unacked: deque[tuple[int, bytes]] = deque()
        self._backlog: deque[bytes | memoryview] = deque()
        self.dead = False
        self.closing = False
        self.stats: dict[str, Any] = {}
        self.token: str | None = None
        self.error: str | None = None
        self._flushes: dict[int, threading.Event] = {}
        self._flush_ok: dict[int, bool] = {}
        self._flush_n = 0
        self._exited = threading.Event()
        self._write(frames.frame(frames.CONFIG, fastjson.dumps(config, default=frames.default)))
        os.set_blocking(self._w, False)
        self._sender = threading.Thread(target=self._send_loop, name="companion-send", daemon=True)
        self._reader = threading.Thread(target=self._read_loop, name="companion-read", daemon=True)
        self._sender.start()
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._w, view) :]

    # --- request path ------------------------------------------------------------------------
    def send(self, data: bytes) -> str:
        """Hand one job frame over: SENT, FULL (dropped: the caller counts it) or DEAD."""
        with self._lock:
            if self.dead or self.closing:
                return DEAD
            if self._backlog:
                if len(self._backlog) >= self.backlog_cap:
                    return FULL
                self._seq += 1
                self._unacked.append((self._seq, data))
                self._backlog.append(data)
                self._spill(data)
                return SENT
            self._seq += 1
            self._unacked.append((self._seq, data))
            try:
                n = os.write(self._w, data)
            except BlockingIOError:
                n = 0
            except OSError:  # the child is gone: the reader thread hands everything back
                self._backlog.append(data)
                return SENT
            if n < len(data):
                self._backlog.append(memoryview(data)[n:])
                self._spill(data)  # whole: a frame cut at the pipe's end is no job to the child
                self._cond.notify()
            return SENT

    def _spill(self, data: bytes) -> None:
        """The frame waits in memory: put it on disk too (one write, no wait on a thread)."""
        if self.spill is not None and self.spill.add(data):
            self._spilled_seq = self._seq

    # --- background -----------------------------------------------------------------------------
    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._backlog and not self.dead and not self._closed_w():
                    self._cond.wait(5.0)  # every change notifies; idle, no 2 Hz wake-ups
                if self.dead or self._closed_w():
                    return
                data = self._backlog[0]
            try:
                select.select([], [self._w], [], 0.5)
                with self._lock:
                    if self.dead or self._closed_w() or not self._backlog:
                        continue
                    try:
                        n = os.write(self._w, data)
                    except BlockingIOError:
                        continue
                    if n < len(data):
                        self._backlog[0] = memoryview(data)[n:]
                    else:
                        self._backlog.popleft()
                    if not self._backlog:
                        self._cond.notify_all()
            except OSError:
                return  # the reader sees the child's end and hands the frames back

    def _closed_w(self) -> bool:
        return self._w < 0

    def _read_loop(self) -> None:
        try:
            for line in self._reply:
                try:
                    msg = fastjson.loads(line)
                except fastjson.JSONDecodeError:
                    continue
                self._take(msg)
        except Exception as exc:
            self.error = f"companion reply: {exc!r}"
        rc = self.proc.wait()
        with self._cond:
            clean = self.closing and rc == 0
            self.dead = True
            frames = [bytes(f) for s, f in self._unacked if s > self._acked]
            self._unacked.clear()
            self._backlog.clear()
            self._cond.notify_all()
        for event in list(self._flushes.values()):
            event.set()
        if not clean:
            why = f"the companion process {self.proc.pid} exited (code {rc})"
            if self.error:
                why += f"; {self.error}"
            try:
                self.on_dead(frames, why)
            except Exception:
                log.exception("companion fallback failed")
        if self.spill is not None:  # its frames are logged, or journaled here now
            self.spill.close(remove=True)
        self._exited.set()

    def _take(self, msg: dict[str, Any]) -> None:
        if "ready" in msg:
            self.token = msg["ready"]
        if "stats" in msg:
            self.stats = msg["stats"]
        if msg.get("records"):
            self.on_records(msg["records"])
        if "ack" in msg:
            with self._lock:
                self._acked = max(self._acked, msg["ack"])
                while self._unacked and self._unacked[0][0] <= self._acked:
                    self._unacked.popleft()
                if self.spill is not None and self._acked >= self._spilled_seq:
                    self.spill.empty()  # the child's journal holds every spilled frame
        if "flushed" in msg:
            n = msg["flushed"]
            self._flush_ok[n] = bool(msg.get("ok"))
            event = self._flushes.get(n)
            if event is not None:
                event.set()
        if msg.get("error"):
            self.error = msg["error"]

    # --- flush / close ----------------------------------------------------------------------------
    def backlog(self) -> int:
        return len(self._backlog)

    def in_flight(self) -> int:
        """Frames handed over that the child has not journaled yet."""
        return len(self._unacked)

    def flush(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._backlog and not self.dead:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.notify_all()
                self._cond.wait(0.05 if left is None else min(0.05, left))
            if self.dead or self._closed_w():
                return False
            self._flush_n += 1
            n = self._flush_n
            event = self._flushes[n] = threading.Event()
            try:
                self._write_blocking(
                    frames.frame(frames.FLUSH, fastjson.dumps({"n": n, "timeout": timeout}))
                )
            except OSError:
                return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic()) + 1.0
        event.wait(left)
        self._flushes.pop(n, None)
        return self._flush_ok.pop(n, False) and not self.dead

    def _write_blocking(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._w, view) :]
            except BlockingIOError:
                select.select([], [self._w], [], 0.5)

    def close(self, timeout: float | None) -> bool:
        """End the pipe (after the backlog), wait for the child to log everything and exit."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self.closing = True
            while self._backlog and not self.dead:
                if deadline is not None and time.monotonic() > deadline:
                    break
                self._cond.notify_all()
                self._cond.wait(0.05)
            fd, self._w = self._w, -1
            self._cond.notify_all()
        if fd >= 0:
            os.close(fd)
        wait = None if deadline is None else max(0.5, deadline - time.monotonic()) + 5.0
        if not self._exited.wait(wait):
            self.proc.kill()
            self._exited.wait(5.0)
            return False
        return self.proc.returncode == 0

    def kill(self) -> None:
        """Stop the child at once (tests; a parent that gives up)."""
        self.proc.kill()


# --- the executor ------------------------------------------------------------------------------

LocalFactory = Callable[[set[str] | None], ThreadExecutor]
Listener = Callable[[list[dict[str, Any]]], None]


class CompanionExecutor:
    """Hands each job to the companion process; when the child is gone before :meth:`close`,
    the work runs in this process from then on (``local``: how to start the in-process
    executor, with the ids its journal recovery must leave alone), nothing lost or twice."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        counters: Counters,
        local: LocalFactory,
        listeners: list[Listener],
        backlog_cap: int,
    ):
        self.counters = counters
        self.listeners = listeners
        self._make_local = local
        self.local: ThreadExecutor | None = None
        self._local_lock = threading.Lock()
        self._fallback_ready = threading.Event()
        self._final: dict[str, Any] = {}
        self.link = Link(
            config,
            on_dead=self._died,
            on_records=self._tell,
            backlog_cap=backlog_cap,
            spill_path=spill.path_for(journal.journal_dir(Path(config["log_dir"]))),
        )

    def _tell(self, records: list[dict[str, Any]]) -> None:
        """The child wrote ``records``: this process's listeners (the metrics' latency
        histograms) hear of them."""
        for listener in list(self.listeners):
            try:
                listener(records)
            except Exception:
                log.exception("log listener failed")

    def _start_local(self, skip: set[str] | None = None) -> ThreadExecutor:
        with self._local_lock:
            if self.local is None:
                self.local = self._make_local(skip)
            return self.local

    # --- jobs ----------------------------------------------------------------------------------
    def submit(self, job: Job, *, block: bool = False, timeout: float | None = None) -> bool:
        """The job encoded once and written to the child's pipe (a job with a background
        teacher call, a closure, stays in this process)."""
        link = self.link
        if not link.dead and job.teacher_call is None:
            try:
                data = frames.encode_job(job)
            except Exception as exc:  # not encodable (an odd message object): done here
                self.counters.last_error = f"companion hand-off: {exc!r}"
            else:
                sent = link.send(data)
                if sent == SENT:
                    self.counters.count("enqueued")
                    return True
                if sent == FULL and not block:
                    self.counters.count("dropped")
                    return False
        return self._submit_here(job, block=block, timeout=timeout)

    def _submit_here(
        self, job: Job, *, block: bool, timeout: float | None, counted: bool = True
    ) -> bool:
        if self.link.dead:  # the fallback recovers first (never twice)
            self._fallback_ready.wait(30.0)
        local = self._start_local()
        return local.submit(job, block=block, timeout=timeout, counted=counted)

    def _died(self, data: list[bytes], why: str) -> None:
        """The companion is gone before close(): run the work here from now on, log what its
        journal holds, and process the frames it had not journaled (never twice)."""
        self.counters.count("companion_failures")
        self.counters.last_error = f"{why}: the shadow work runs in this process now"
        log.warning("%s", self.counters.last_error)
        jobs: list[Job] = []
        for one in data:
            try:
                jobs.append(frames.decode_job(memoryview(one)[5:])[0])
            except Exception:
                self.counters.count("lost")
        link = self.link
        gauges = {"queue_depth": 0, "unwritten": 0, "journal_pending": 0}  # void now
        link.stats = self._final = dict(link.stats) | gauges  # its counters stay
        try:
            local = self._start_local(skip={j.id for j in jobs if j.id})
        finally:
            self._fallback_ready.set()
        if link.token and jobs:
            shaped = [{"id": j.id, "ts": format_ts(j.ts) if j.ts else None} for j in jobs]
            logged = journal.logged_ids(local.log_dir, link.token, shaped)
            if logged:
                self.counters.count("recovered_already_logged", len(logged))
                jobs = [j for j in jobs if j.id not in logged]
        for job in jobs:
            self.counters.count("recovered")
            self._submit_here(job, block=True, timeout=30.0, counted=False)

    # --- flush / close / stats -----------------------------------------------------------------
    def flush(self, timeout: float | None = 30.0) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        link = self.link
        ok = True
        if not link.dead:
            ok = link.flush(timeout)
            if link.dead:  # it died meanwhile: its jobs are here now
                ok = True
        if self.local is None:
            return ok
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.local.flush(left) and ok

    def close(self, timeout: float | None = 30.0) -> bool:
        link = self.link
        linked_ok = True
        if not link.dead:
            linked_ok = link.close(timeout)
            self._final = dict(link.stats)
        if self.local is None:  # the companion did it all
            return linked_ok and not self._final.get("unfinished_at_exit", 0)
        return self.local.close(timeout) and linked_ok

    def stats(self) -> dict[str, Any]:
        """The child's counters (as of its last report, at most about a second old, exact
        after :meth:`flush`), the frames in flight, and the in-process executor's gauges."""
        link = self.link
        child = link.stats or self._final
        counts = {k: child.get(k, 0) for k in STAT_KEYS if k != "enqueued"}
        counts["enqueued"] = -child.get("dropped", 0)  # the hand-off counted it here, once
        more: dict[str, Any] = {k: child.get(k, 0) for k in ADDED} | {
            "counts": counts,
            "breaker": child.get("breaker"),
            "unknown_models": child.get("unknown_models"),
            "students": child.get("students"),
            "last_error": child.get("last_error"),
            "companion": {
                "pid": link.pid,
                "alive": not link.dead,
                "in_flight": 0 if link.dead else link.in_flight(),
                "backlog": link.backlog(),
                "error": link.error,
            },
        }
        if not link.dead:
            more["queue_depth"] += link.in_flight()
        if self.local is not None:
            here = self.local.stats()
            for k in ("queue_depth", "unwritten", "journal_pending", "journal_errors"):
                more[k] += here[k]
            more["last_error"] = here["last_error"] or more["last_error"]
        return more


def start_companion(
    config: dict[str, Any],
    *,
    counters: Counters,
    local: LocalFactory,
    listeners: list[Listener],
    backlog_cap: int,
) -> CompanionExecutor | None:
    """A :class:`CompanionExecutor` with its child started; None when the child cannot start
    (counted in ``companion_failures``, said in ``last_error``: the work runs here)."""
    try:
        return CompanionExecutor(
            config, counters=counters, local=local, listeners=listeners, backlog_cap=backlog_cap
        )
    except Exception as exc:
        counters.count("companion_failures")
        counters.last_error = f"companion did not start ({exc!r}): the shadow work runs here"
        log.warning("%s", counters.last_error)
        return None

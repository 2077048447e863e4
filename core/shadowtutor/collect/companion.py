"""The collector's companion process: the shadow work, out of the app's interpreter.

The app's request path only decides and hands off. With the companion on
(``SHADOWTUTOR_COMPANION=1``, or ``ShadowCollector(companion=True)``; ``shadowtutor proxy``
turns it on unless the setting says ``0``), the hand-off is one ``os.write`` of a pre-encoded
frame to a pipe (non-blocking, 1 MiB of kernel buffer; what does not fit waits in a bounded
backlog that a sender thread writes; past that bound the job is dropped and counted). A child
process (``python -m shadowtutor.collect.companion``) reads the frames and runs an ordinary
in-process :class:`~shadowtutor.collect.collector.ShadowCollector` on them: the per-job
processing (job -> record: student call, similarity, detection, encoding, writing) is the same
``_process`` as without the companion, only in another interpreter, so it never competes with
the app's requests for the GIL.

Guarantees, as in-process:

* **journal**: the child journals every job it reads (``<log>/journal``, written inline as
  it reads) and reports back how many are on disk; the parent keeps each frame until then. A
  ``kill -9`` of the app loses nothing already written to the pipe: the child drains it to EOF,
  logs it and exits. A crash of the child makes the parent start its in-process workers
  (``stats()["companion_failures"]``, ``last_error`` says why), recover the child's journal
  and process the frames the child had not journaled yet: nothing is lost, nothing twice.
* **no orphans**: the child exits at EOF of its pipe (its parent closed it, or died) and also
  when its parent process is gone (a watchdog on ``getppid()``, for a pipe end leaked to a
  forked process).
* **counters**: the child sends its ``stats()`` (and the latencies of the records it wrote,
  for the metrics' histograms) at most once a second (``PUSH_S``) and with each flush reply;
  the parent's ``stats()`` adds them to its own request-path counters.
* **flush / close**: ``flush()`` sends a flush frame behind the jobs and waits for the child's
  answer; ``close()`` ends the pipe, waits for the child to write everything and exit.

Frames: 4-byte big-endian length, 1-byte kind, payload. ``J`` a job (4-byte length of its
JSON fields, the fields, then the teacher's raw proxy bytes if any), ``F`` a flush
(``{"n", "timeout"}``), ``C`` the configuration (first frame). Replies: JSON lines.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

from shadowtutor import fastjson
from shadowtutor.backends import Answer
from shadowtutor.collect.job import Job, wire_fields
from shadowtutor.collect.openai_shape import teacher_from_chunks, teacher_from_completion
from shadowtutor.gate import routing

log = logging.getLogger("shadowtutor.companion")

PIPE_SIZE = 1 << 20  # asked of the kernel; the hand-off never blocks while this holds
PUSH_S = 1.0  # the child's stats/ack interval: at most 1 report a second (each wakes two threads)
# The child's scheduling priority: background work, so on a busy box the app's requests get
# the CPU first (a child that falls behind fills its pipe; then jobs are dropped, counted).
NICE = 10
_HEAD = struct.Struct(">IB")
_LEN = struct.Struct(">I")
F_SETPIPE_SZ = 1031


# --- frames ------------------------------------------------------------------------------------


def _default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(exclude_none=True)
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)  # type: ignore[arg-type]
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)


def frame(kind: bytes, payload: bytes) -> bytes:
    return _HEAD.pack(len(payload) + 1, kind[0]) + payload


def encode_job(job: Job) -> bytes:
    """One ``J`` frame for a job (the request path's only encoding: once, with orjson).

    The teacher's raw proxy bytes go as they are (parsed in the child); a response object or
    stream chunks become answer fields here (attribute reads, no serialisation of the object).
    A job with a background teacher call cannot cross (a closure): ValueError.
    """
    if job.teacher_call is not None:
        raise ValueError("a background teacher call runs in this process")
    teacher = job.teacher
    form = "fields"
    if teacher is None:
        if job.teacher_obj is not None:
            teacher, form = teacher_from_completion(job.teacher_obj), "obj"
        elif job.teacher_chunks is not None:
            teacher, form = teacher_from_chunks(job.teacher_chunks), "chunks"
    result = job.student_result
    fields = wire_fields(job) | {
        "ts": job.ts.timestamp() if job.ts else None,
        "teacher": teacher,
        "form": form,
        "sse": job.teacher_sse,
        "student_result": dataclasses.astuple(result) if result is not None else None,
    }
    body = fastjson.dumps(fields, default=_default)
    raw = job.teacher_raw or b""
    return _HEAD.pack(len(body) + len(raw) + 5, 74) + _LEN.pack(len(body)) + body + raw


def decode_job(payload: bytes | memoryview) -> tuple[Job, str]:
    """The job of a ``J`` payload, and the form its teacher answer had."""
    (n,) = _LEN.unpack_from(payload, 0)
    f = fastjson.loads(payload[4 : 4 + n])
    raw = bytes(payload[4 + n :])
    route = f.get("route")
    result = f.get("student_result")
    from datetime import datetime

    job = Job(
        messages=f["messages"],
        source=f.get("source") or "live",
        id=f["id"],
        ts=datetime.fromtimestamp(f["ts"], UTC) if f.get("ts") is not None else None,
        user_hash=f.get("user_hash"),
        category=f.get("category"),
        language=f.get("language"),
        category_detected=bool(f.get("category_detected")),
        metadata=f.get("metadata") or {},
        route=routing.Route(*route) if route else None,
        options=f.get("options") or {},
        teacher=f.get("teacher"),
        teacher_raw=raw if raw else None,
        teacher_sse=bool(f.get("sse")),
        teacher_latency_ms=f.get("teacher_latency_ms"),
        teacher_ttft_ms=f.get("teacher_ttft_ms"),
        student_result=Answer(*result) if result else None,
        student_error=f.get("student_error"),
    )
    job.conversation_id = f.get("conversation_id")  # already pseudonymised by the parent
    return job, f.get("form") or "fields"


# --- the parent's side -------------------------------------------------------------------------

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
    ):
        self.on_dead = on_dead
        self.on_records = on_records
        self.backlog_cap = backlog_cap
        job_r, self._w = os.pipe()
        reply_r, reply_w = os.pipe()
        try:
            fcntl.fcntl(self._w, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # a lower system limit: the kernel's default buffer, and the backlog
            pass
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shadowtutor.collect.companion", str(job_r), str(reply_w)],
                pass_fds=(job_r, reply_w),
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except BaseException:
            for fd in (job_r, reply_w, self._w, reply_r):
                os.close(fd)
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
        self._write(frame(b"C", fastjson.dumps(config, default=_default)))
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
                self._cond.notify()
            return SENT

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
                self._write_blocking(frame(b"F", fastjson.dumps({"n": n, "timeout": timeout})))
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


# --- the child's side --------------------------------------------------------------------------


def _read_exact(fd: int, n: int) -> bytes | None:
    parts = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


class _Child:
    def __init__(self, rfd: int, wfd: int):
        self.rfd = rfd
        self.out = os.fdopen(wfd, "wb", buffering=0)
        self.out_lock = threading.Lock()
        self.parent = os.getppid()
        self.committed = 0
        self.skipped = 0  # frames that could not become jobs (counted as lost)
        self.records: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.changed = threading.Event()

    def reply(self, msg: dict[str, Any]) -> None:
        data = fastjson.dumps(msg, default=_default) + b"\n"
        with self.out_lock:
            try:
                self.out.write(data)
            except OSError:
                pass  # the parent is gone; we finish and exit all the same

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        records, self.records = self.records, []
        return {
            "ack": self.committed + self.skipped,
            "stats": self.collector.stats(),
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

    def run(self) -> int:
        from shadowtutor.collect.collector import ShadowCollector
        from shadowtutor.config import Settings

        head = _read_exact(self.rfd, 5)
        if head is None:
            return 0
        size, kind = _HEAD.unpack(head)
        config = fastjson.loads(_read_exact(self.rfd, size - 1) or b"{}")
        settings = Settings(**config.pop("settings"))
        self.collector = c = ShadowCollector(
            settings, companion=False, refresh_routing=False, journal_inline=True, **config
        )
        assert c._journal is not None
        c._journal.on_commit = self.on_commit
        c._writer.listeners.append(self.on_records)
        self.reply({"ready": c._writer.token})
        threading.Thread(target=self.push_loop, name="companion-push", daemon=True).start()
        try:
            while True:
                try:
                    head = _read_exact(self.rfd, 5)
                except OSError:
                    head = None
                if head is None:
                    break
                size, kind = _HEAD.unpack(head)
                payload = _read_exact(self.rfd, size - 1)
                if payload is None:
                    break
                if kind == 74:  # J
                    self.job(payload)
                elif kind == 70:  # F
                    req = fastjson.loads(payload)
                    threading.Thread(target=self.flush, args=(req,), daemon=True).start()
        finally:
            ok = c.close(timeout=config.get("close_timeout", 30.0))
            self.stop.set()
            self.committed = self.committed  # close() committed the journal's last lines
            self.reply(self.snapshot(closed=ok))
        return 0

    def job(self, payload: bytes) -> None:
        try:
            job, form = decode_job(payload)
        except Exception as exc:
            self.skipped += 1
            self.collector.count("lost")
            self.collector.last_error = f"companion: unreadable job frame: {exc!r}"
            return
        if form != "fields" and (job.teacher or {}).get("error"):
            self.collector.count("teacher_errors")  # a stream that never finished
        # Blocking: the parent already counted the hand-off; a full queue here waits (the
        # pipe and the parent's bounded backlog are the queue the request path sees).
        self.collector.submit(job, block=True)

    def flush(self, req: dict[str, Any]) -> None:
        # The child's journal writes inline: once flushed, its lines are already written.
        ok = self.collector.flush(req.get("timeout"))
        self.reply(self.snapshot(flushed=req["n"], ok=ok))


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="companion: %(message)s")
    try:
        os.nice(NICE)
    except OSError:
        pass
    child = _Child(int(argv[1]), int(argv[2]))
    try:
        return child.run()
    except Exception as exc:
        child.reply({"error": f"companion failed: {exc!r}"})
        raise


def config_for(collector: Any, settings: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """What the child needs to build the same collector (settings and constructor overrides)."""
    return {"settings": dataclasses.asdict(settings), **overrides}


def log_dir_ok(log_dir: Any) -> bool:
    return isinstance(log_dir, Path)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

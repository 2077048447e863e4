"""The shadow collector: hand each teacher answer to the background, pair it with the student's.

The request path (:mod:`shadowtutor.collect.path`, used by the wrapper in
:mod:`shadowtutor.collect.wrapper` and the proxy in :mod:`shadowtutor.collect.proxy`) asks the
collector, which owns its breaker and its counters: :meth:`ShadowCollector.begin` decides a
request (routing with this collector's settings, sampling, eligibility),
:meth:`ShadowCollector.student_call` lets the student serve it (breaker, fallback),
:meth:`ShadowCollector.hand_off` builds the :class:`Job` and puts it on a bounded queue with
``put_nowait``; when the queue is full the job is dropped and counted, never waited for.
Daemon worker threads then, for each job:

1. read the teacher's answer (a response object, stream chunks, raw proxy bytes, a replayed
   record, or — when the student served the user — a background teacher call);
2. ask the student the same prompt (timeout ``SHADOWTUTOR_STUDENT_TIMEOUT_S``), unless the
   circuit breaker is open (it opens after ``SHADOWTUTOR_BREAKER_FAILURES`` consecutive
   failures and lets one probe through after ``SHADOWTUTOR_BREAKER_COOLDOWN_S``);
3. compute cost (usage block, else an estimate marked in ``metadata.usage_estimated``), the
   similarity (``SHADOWTUTOR_SIMILARITY``), and language/category when the caller gave none
   (:mod:`shadowtutor.detect`);
4. hand the record to one writer thread, which appends batches with :class:`LogWriter`.

Every shadowed request becomes a record, student failures included (``student.error`` says
``timeout: ...``, ``unavailable: ...``, ``circuit breaker open`` ...). Nothing raises into the
caller; :meth:`ShadowCollector.stats` counts what happened, and :meth:`flush` (also run at
interpreter exit) drains the queue and writes what is pending.

The job type and answer extraction live in :mod:`shadowtutor.collect.job`, the breaker in
:mod:`shadowtutor.backends.breaker`, the client wrapper in :mod:`shadowtutor.collect.wrapper`,
the proxy in :mod:`shadowtutor.collect.proxy`.

Cost policy: the teacher's cost is tokens times the versioned price table; a model missing
from the table gets ``cost_usd: null``, its name in ``metadata.cost_unknown`` and a count in
``stats()["unknown_models"]``, never a silent $0. A local student (Ollama, or a model priced
``local`` in the table) costs $0 per request in the record; a flat monthly cost
(``SHADOWTUTOR_STUDENT_MONTHLY_COST_USD``, e.g. a GPU rental) is not spread per record, because
the share depends on the month's volume: analytics divide it over the month's student requests.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import queue
import threading
import time
import weakref
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shadowtutor import detect, pricing
from shadowtutor.backends import Answer, Backend, BackendError, student_backend
from shadowtutor.backends.breaker import Breaker
from shadowtutor.collect import companion as companion_link
from shadowtutor.collect import journal as journaling
from shadowtutor.collect import records
from shadowtutor.collect.job import Call, Context, Job, as_message
from shadowtutor.collect.openai_shape import (
    ChatRequest,
)
from shadowtutor.config import Settings
from shadowtutor.errors import error_text
from shadowtutor.gate import routing
from shadowtutor.log import record as logrecord
from shadowtutor.log.store import (
    LogWriteError,
    LogWriter,
    jsonl_root,
    known_ids_in,
    parquet_root,
    tail_ids,
)
from shadowtutor.similarity import SimilarityMethod, compare, get_method
from shadowtutor.students.fanout import Fanout, Lane

log = logging.getLogger("shadowtutor.collector")

BREAKER_OPEN = "circuit breaker open"
WRITE_SLICE = 64  # records encoded and written between two GIL hand-offs


# --- sampling ----------------------------------------------------------------------------------


SAMPLING_SALT = "shadow-sample"  # its own salt: who is sampled does not follow who is routed


def bucket(key: str) -> float:
    """Stable position 0..100 of a key (same key, same bucket, on every machine)."""
    return routing.bucket_of(key, SAMPLING_SALT)


def sampled(key: str | None, percent: float) -> bool:
    """Whether a conversation/user is shadowed at ``percent`` (0 none, 100 all)."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    return bucket(key or "") < percent


def sampling_key(
    messages: list[dict[str, Any]], conversation_id: str | None, user: str | None
) -> str:
    """Conversation id, else user, else the conversation's first user message (which stays
    the same on every turn, so a conversation is sampled consistently)."""
    if conversation_id:
        return f"c:{conversation_id}"
    if user:
        return f"u:{user}"
    for msg in messages:
        if msg.get("role") == "user":
            return f"m:{msg.get('content')}"
    return ""


# --- the collector -----------------------------------------------------------------------------

_LIVE: weakref.WeakSet[ShadowCollector] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for collector in list(_LIVE):
        collector.close(timeout=5.0)


class ShadowCollector:
    """Queue, workers, breaker and log writer for shadow records (see the module docstring).

    ``settings`` gives every default; keyword arguments override single parts (tests, replay,
    benchmarks). ``student`` is any :class:`shadowtutor.backends.Backend`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        student: Backend | None = None,
        log_dir: Path | str | None = None,
        similarity: SimilarityMethod | None = None,
        workers: int | None = None,
        queue_size: int | None = None,
        sample_percent: float | None = None,
        record_breaker_skips: bool = True,
        batch_size: int = 500,
        flush_interval_s: float = 1.0,  # records gather this long: fewer writer wake-ups
        companion: bool | None = None,
        refresh_routing: bool = True,
        journal_inline: bool = False,
    ):
        self.settings = settings or Settings.load()
        s = self.settings
        self._journal_inline = journal_inline  # the companion: its threads are not the app's
        self.student = student or student_backend(s)
        self.log_dir = Path(log_dir) if log_dir else s.log_path
        self.similarity = similarity or get_method(s)
        self.prices = pricing.load_table(s.price_table)
        self.sample_percent = s.sample_percent if sample_percent is None else sample_percent
        self.eligible = s.eligible
        self.record_breaker_skips = record_breaker_skips
        self.breaker = Breaker(s.breaker_failures, s.breaker_cooldown_s)
        # Every active student, each with its own backend, timeout and breaker; while none is
        # registered (or a test passes its `student`) the one lane is self.student/self.breaker.
        self.fanout = Fanout(
            s, default_backend=self.student, default_breaker=self.breaker, fixed=student is not None
        )
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._queue: queue.Queue[Job | None] = queue.Queue(
            maxsize=max(1, s.queue_size if queue_size is None else queue_size)
        )
        self._writer = LogWriter(self.log_dir)
        self._journal: journaling.Journal | None = None
        self._pending: list[dict[str, Any]] = []
        self._pending_cap = max(10_000, self._queue.maxsize * 10)
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._torn_ids: list[str] = []  # the job of a line a full disk left torn
        self._local_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._unknown: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self.last_error: str | None = None
        self._closed = False
        self._n_workers = max(1, s.workers if workers is None else workers)
        self._threads: list[threading.Thread] = []
        self._link: companion_link.Link | None = None
        self._fallback_ready = threading.Event()
        self._companion_final: dict[str, Any] = {}
        want = s.companion if companion is None else companion
        if want:
            self._start_companion(
                injected=student is not None or similarity is not None,
                overrides={
                    "log_dir": str(self.log_dir),
                    "workers": self._n_workers,
                    "queue_size": self._queue.maxsize,
                    "sample_percent": self.sample_percent,
                    "record_breaker_skips": record_breaker_skips,
                    "batch_size": batch_size,
                    "flush_interval_s": flush_interval_s,
                },
            )
        if self._link is None:
            self._start_local()
        if refresh_routing:  # not in the companion: it never routes
            threading.Thread(
                target=self._keep_routing_warm, name="shadow-routing", daemon=True
            ).start()
        _LIVE.add(self)

    # --- where the shadow work runs: a companion process, or these threads -----------------------
    def _start_companion(self, *, injected: bool, overrides: dict[str, Any]) -> None:
        """Start the companion process (see :mod:`shadowtutor.collect.companion`); when it
        cannot run, the in-process workers do the work, counted and said."""
        if injected or not companion_link.log_dir_ok(self.log_dir):
            why = "a student or similarity object was passed in" if injected else "a bucket log"
            self.last_error = f"companion not used ({why}): the shadow work runs in this process"
            return
        try:
            self._link = companion_link.Link(
                {"settings": dataclasses.asdict(self.settings), **overrides},
                on_dead=self._companion_died,
                on_records=self._companion_records,
                backlog_cap=self._queue.maxsize,
            )
        except Exception as exc:
            self.count("companion_failures")
            self.last_error = f"companion did not start ({exc!r}): the shadow work runs here"
            log.warning("%s", self.last_error)

    def _start_local(self, skip: set[str] | None = None) -> None:
        """The in-process pipeline: journal (recovering what dead writers left), workers and
        the writer thread. Started once."""
        with self._local_lock:
            if self._journal is not None:
                return
            self._journal = journaling.Journal(
                journaling.journal_dir(self.log_dir),
                self._writer.token,
                inline=self._journal_inline,
            )
            self._threads = [
                threading.Thread(target=self._work, name=f"shadow-worker-{i}", daemon=True)
                for i in range(self._n_workers)
            ]
            self._threads.append(
                threading.Thread(target=self._write_loop, name="shadow-writer", daemon=True)
            )
            self._recover(skip)
            for t in self._threads:
                t.start()

    def _companion_records(self, records: list[dict[str, Any]]) -> None:
        for listener in list(self._writer.listeners):  # the metrics' latency histograms
            try:
                listener(records)
            except Exception:
                log.exception("log listener failed")

    def _companion_died(self, frames: list[bytes], why: str) -> None:
        """The companion is gone before close(): run the work here from now on, log what its
        journal holds, and process the frames it had not journaled (never twice)."""
        self.count("companion_failures")
        self.last_error = f"{why}: the shadow work runs in this process now"
        log.warning("%s", self.last_error)
        jobs: list[Job] = []
        for data in frames:
            try:
                jobs.append(companion_link.decode_job(memoryview(data)[5:])[0])
            except Exception:
                self.count("lost")
        link = self._link
        if link is not None:  # its counters stay; its gauges are void now
            gauges = {"queue_depth": 0, "unwritten": 0, "journal_pending": 0}
            link.stats = self._companion_final = dict(link.stats) | gauges
        try:
            self._start_local(skip={j.id for j in jobs if j.id})
        finally:
            self._fallback_ready.set()
        token = link.token if link is not None else None
        if token and jobs:
            shaped = [{"id": j.id, "ts": logrecord.format_ts(j.ts) if j.ts else None} for j in jobs]
            logged = self._ids_in_log(token, shaped)
            if logged:
                self.count("recovered_already_logged", len(logged))
                jobs = [j for j in jobs if j.id not in logged]
        for job in jobs:
            self.count("recovered")
            self._submit_local(job, block=True, timeout=30.0, counted=False)

    # --- journal recovery ---------------------------------------------------------------------
    def _recover(self, skip: set[str] | None = None) -> None:
        """Write the pending jobs of journals left by writers that are gone (a crash, a kill -9,
        a stop past the flush timeout), then remove those journals. Never raises. Ids in
        ``skip`` are left to the caller (a dead companion's jobs, processed in full)."""
        assert self._journal is not None
        for path in journaling.orphaned(self._journal.folder):
            try:
                entries, torn = journaling.pending_entries(path)
                entries = [e for e in entries if not skip or e["id"] not in skip]
                logged = self._ids_in_log(path.name.rsplit("-", 1)[0], entries)
                fresh = [e for e in entries if e["id"] not in logged]
                records = [r for e in fresh for r in self._process(journaling.decode(e))]
                self._writer.append_many(records)
                path.unlink()
            except Exception as exc:  # keep the journal for the next try; say why
                self.last_error = f"journal recovery from {path}: {exc}"
                log.warning("%s", self.last_error)
                continue
            self.count("recovered", len(records))
            self.count("recovered_already_logged", len(entries) - len(fresh))
            if records or torn:
                log.warning(
                    "recovered %d pending answers from %s (%d already logged, %d torn lines)",
                    len(records), path.name, len(entries) - len(fresh), torn,
                )  # fmt: skip

    def _ids_in_log(self, token: str, entries: list[dict[str, Any]]) -> set[str]:
        """Ids of ``entries`` the dead writer already logged: its records reach the log up to
        one journal commit before their done-mark, so the tail of its own files suffices."""
        wanted = {e["id"] for e in entries}
        found: set[str] = set()
        if not isinstance(self.log_dir, Path):  # a bucket: compaction drops a repeated id
            return found
        for day in {journaling.entry_day(e) for e in entries} - {None}:
            path = jsonl_root(self.log_dir) / f"date={day}" / f"{token}.jsonl"
            if path.exists():
                found |= wanted & tail_ids(path)
            else:  # compacted since: the day's Parquet
                found |= wanted & known_ids_in(
                    sorted(parquet_root(self.log_dir).glob(f"date={day}/*.parquet"))
                )
        return found

    # --- counters ------------------------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        with self._count_lock:
            self._counts[name] += n

    STAT_KEYS = (
        "enqueued dropped not_sampled ineligible logged student_ok student_errors "
        "student_timeouts breaker_skipped teacher_errors similarity_errors write_errors "
        "lost usage_estimated served_by_student student_fallbacks route_errors "
        "streams_abandoned invalid recovered recovered_already_logged unfinished_at_exit "
        "companion_failures"
    ).split()

    def stats(self) -> dict[str, Any]:
        """Counters since start: what was enqueued, dropped, logged, failed, and why; with
        the companion, its counters added (as of its last report, at most about a second old,
        exact after :meth:`flush`)."""
        with self._count_lock:
            counts = dict(self._counts)
            unknown = dict(self._unknown)
        with self._cond:
            pending = len(self._pending) + self._writer.held
        journal = self._journal
        out: dict[str, Any] = {k: counts.get(k, 0) for k in self.STAT_KEYS}
        out.update(
            {
                "queue_depth": self._queue.qsize(),
                "queue_size": self._queue.maxsize,
                "unwritten": pending,
                "breaker": self.breaker.state,
                "breaker_opened": self.breaker.opened_count,
                "breaker_abandoned_probes": self.breaker.abandoned_probes,
                "unknown_models": unknown,
                "routing_fallbacks": routing.fallbacks(),
                "journal_pending": journal.pending() if journal else 0,
                "journal_errors": journal.write_errors if journal else 0,
                "last_error": self.last_error or (journal.last_error if journal else None),
                "log_dir": str(self.log_dir),
                "similarity_method": self.similarity.name,
                "students": self.fanout.stats(),
                "companion": self._companion_state(),
            }
        )
        link = self._link
        child = (link.stats if link is not None else {}) or self._companion_final
        if child:
            for k in self.STAT_KEYS:
                if k != "enqueued":  # the hand-off counted it here, once
                    out[k] += child.get(k, 0)
            out["enqueued"] -= child.get("dropped", 0)
            out["queue_depth"] += child.get("queue_depth", 0)
            out["unwritten"] += child.get("unwritten", 0)
            out["journal_pending"] += child.get("journal_pending", 0)
            out["journal_errors"] += child.get("journal_errors", 0)
            out["breaker_opened"] += child.get("breaker_opened", 0)
            out["breaker_abandoned_probes"] += child.get("breaker_abandoned_probes", 0)
            if out["breaker"] == "closed":  # the shadow breaker lives in the companion
                out["breaker"] = child.get("breaker", "closed")
            for model, n in (child.get("unknown_models") or {}).items():
                unknown[model] = unknown.get(model, 0) + n
            out["last_error"] = out["last_error"] or child.get("last_error")
            if child.get("students"):  # the fan-out runs in the companion: its lanes count
                out["students"] = child["students"]
        if link is not None and not link.dead:
            out["queue_depth"] += link.in_flight()
        return out

    def _companion_state(self) -> dict[str, Any] | None:
        link = self._link
        if link is None:
            return None
        return {
            "pid": link.pid,
            "alive": not link.dead,
            "in_flight": 0 if link.dead else link.in_flight(),
            "backlog": link.backlog(),
            "error": link.error,
        }

    def _keep_routing_warm(self) -> None:
        """Keep routing's background refresher of this collector's database running while the
        collector lives, and the fan-out's students fresh (their reads never land on a
        request thread; see routing)."""
        while not self._closed:
            try:
                routing.watch(self.settings.db_url)
                self.fanout.lanes()  # the students too: serving never reads the registry
            except Exception as exc:  # routing reports its own problems; never die here
                self.last_error = f"routing refresh: {exc!r}"
            time.sleep(1.0)

    # --- request path ----------------------------------------------------------------------------
    def decide(
        self,
        messages: list[dict[str, Any]],
        *,
        user: str | None = None,
        conversation_id: str | None = None,
        category: str | None = None,
    ) -> tuple[routing.Route, bool, str | None]:
        """(route, shadowed?, category) for one request; never raises.

        The category is the caller's, else detected (cheap keyword rules) because routing and
        eligibility need it before the request is answered.
        """
        try:
            if category is None:
                category = detect.detect_category(logrecord.prompt_text(messages))
            eligible = not self.eligible or category in self.eligible
            key = user or conversation_id  # a user stays with the same model across chats
            try:
                route = routing.route(key=key, category=category, settings=self.settings)
            except Exception as exc:  # a broken router must not break the app
                self.count("route_errors")
                self.last_error = f"route(): {exc!r}"
                route = routing.Route("teacher", 0, None, eligible)
            if route.served_by == "student" and not eligible:
                route = routing.Route("teacher", route.stage, route.bucket, eligible)
            if not eligible:
                self.count("ineligible")
                return route, False, category
            if not sampled(sampling_key(messages, conversation_id, user), self.sample_percent):
                self.count("not_sampled")
                return route, False, category
            return route, True, category
        except Exception as exc:
            self.last_error = f"decide(): {exc!r}"
            return routing.Route("teacher", 0, None, None), False, category

    def begin(self, request: ChatRequest, context: Context, origin: Any = None) -> Call:
        """The :class:`Call` of one request: routed, sampled, its category known (never
        raises; see :meth:`decide`)."""
        call = Call(request, context, origin=origin, metadata=dict(context.metadata))
        call.route, call.shadowed, call.category = self.decide(
            request.messages,
            user=call.user,
            conversation_id=context.conversation_id,
            category=context.category,
        )
        return call

    def student_call(self, call: Call) -> Answer | None:
        """Ask the student to serve ``call`` (routed to it): its answer, or None when the
        breaker is open or the student failed; then the call falls back to the teacher (the
        failure counted in ``student_fallbacks`` and kept for the record). Never raises.
        The student is the one the route names (the one with the approved GO)."""
        lane = self.fanout.lane(getattr(call.route, "student", None), refresh=False)
        if lane.breaker.allow():
            assert call.request is not None
            try:
                result = lane.backend.chat(call.request.messages, **call.request.options)
            except Exception as exc:
                lane.breaker.failure()
                self.count("student_fallbacks")
                self.last_error = f"student (serving): {exc}"
                call.fell_back(exc)
                return None
            lane.breaker.success()
            self.count("served_by_student")
            return result
        call.fell_back(None)
        return None

    def hand_off(self, call: Call, **answers: Any) -> None:
        """Queue the pair of a shadowed call with the answers the request path has (see
        :class:`Job`); an unshadowed call is left alone. Never raises into the app."""
        if not call.shadowed:
            return
        try:
            self.submit(call.job(**answers))
        except Exception as exc:
            self.last_error = f"submit: {exc!r}"

    def teacher_failed(self) -> None:
        """The teacher answered the app with an error (the app gets it unchanged)."""
        self.count("teacher_errors")

    def stream_abandoned(self) -> None:
        """The app stopped reading a teacher stream early: no complete answer to log."""
        self.count("streams_abandoned")

    def submit(self, job: Job, *, block: bool = False, timeout: float | None = None) -> bool:
        """Queue a job; False (and counted as dropped) when the queue is full or closed.

        The request path uses the default ``block=False``; replay blocks so nothing is skipped.
        With the companion, the job is encoded once and written to its pipe (a job with a
        background teacher call, a closure, stays in this process).
        """
        if self._closed:
            self.count("dropped")
            return False
        if job.ts is None:  # the record's time is the request's, not the worker's
            job.ts = datetime.now(UTC)
        if job.id is None:  # fixed now: the journal and the log must agree on it
            job.id = logrecord.new_id()
        link = self._link
        if link is not None and not link.dead and job.teacher_call is None:
            try:
                data = companion_link.encode_job(job)
            except Exception as exc:  # not encodable (an odd message object): done here
                self.last_error = f"companion hand-off: {exc!r}"
            else:
                sent = link.send(data)
                if sent == companion_link.SENT:
                    self.count("enqueued")
                    return True
                if sent == companion_link.FULL and not block:
                    self.count("dropped")
                    return False
        return self._submit_local(job, block=block, timeout=timeout)

    def _submit_local(
        self, job: Job, *, block: bool, timeout: float | None, counted: bool = True
    ) -> bool:
        link = self._link
        if link is not None and link.dead:  # the fallback recovers first (never twice)
            self._fallback_ready.wait(30.0)
        if self._journal is None:
            self._start_local()
        assert self._journal is not None
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

    def wrap(self, client: Any) -> Any:
        """Wrap an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client (see ``collect.wrapper``)."""
        from shadowtutor.collect.wrapper import wrap

        return wrap(client, self)

    # --- workers -------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                records = self._process(job)
                if not records:
                    self._journal.done([job.id])
                else:
                    with self._cond:
                        self._pending.extend(records)
                        n = len(self._pending)  # the first records wake a sleeping writer
                        if n >= self.batch_size or n == len(records):
                            self._cond.notify()
            except Exception as exc:  # never let one bad job kill a worker
                self.count("lost")
                self._journal.done([job.id])
                self.last_error = f"worker: {exc!r}"
                log.exception("shadow job failed")
            finally:
                self._queue.task_done()

    def _process(self, job: Job) -> list[dict[str, Any]]:
        """The records of one job: one per student that answered it (see
        :mod:`shadowtutor.students.fanout`), sharing the job's id as ``request_id``; the first
        (the serving student's, else the first active one's) is the primary record, whose id
        is the job's and whose teacher cost is the one counted."""
        shared = dict(job.metadata)
        job.messages = [as_message(m) for m in job.messages]
        teacher = self._teacher_answer(job, shared)
        teacher_estimated = bool(teacher.pop(records.ESTIMATED, False))
        route = job.route or routing.Route("teacher", 0, None, None)
        served = route.student
        key = sampling_key(job.messages, job.conversation_id, job.user_hash)
        found, lead, taken = self.fanout.answers(
            key, lambda lane: self._student_answer(job, shared, lane), first=served
        )
        if not found:
            if taken:  # asked, but a skip that is not recorded (record_breaker_skips=False)
                return []
            found = [(lead, {})]  # no student's share took it: the teacher's answer alone
        self._cost(teacher, "teacher", shared)
        if teacher_estimated:
            self.count("usage_estimated")
        out = []
        for n, (lane, student) in enumerate(found):
            record = self._record(
                job, dict(shared), teacher, dict(student), lane, teacher_estimated
            )
            if n > 0:
                record = records.secondary(record, job.id or "", lane.name)
            try:  # never write what `logs validate` would reject (e.g. `messages: []`)
                out.append(logrecord.check_for_log(record))
            except logrecord.RecordError as exc:
                self.count("invalid")
                self.last_error = f"record not logged: {exc}"
        return out

    def _record(
        self,
        job: Job,
        metadata: dict[str, Any],
        teacher: dict[str, Any],
        student: dict[str, Any],
        lane: Lane,
        teacher_estimated: bool,
    ) -> dict[str, Any]:
        estimated = ["teacher"] if teacher_estimated else []
        if student.pop(records.ESTIMATED, False):
            estimated.append("student")
        if estimated:
            metadata["usage_estimated"] = estimated
            self.count("usage_estimated", len(estimated) - teacher_estimated)
        self._cost(student, "student", metadata, lane)
        similarity = self._similarity(teacher, student, metadata) if student else None
        return records.build(
            job,
            teacher=teacher,
            student=student,
            student_name=lane.name,
            similarity=similarity,
            metadata=metadata,
        )

    def _teacher_answer(self, job: Job, metadata: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "latency_ms": job.teacher_latency_ms,
            "ttft_ms": job.teacher_ttft_ms,
        }
        try:
            given = job.teacher_fields()
            if given is not None:
                answer.update(given)
            elif job.teacher_call is not None:
                answer.update(records.work_fields(job.teacher_call()))
        except Exception as exc:
            answer["error"] = error_text(exc)
            self.count("teacher_errors")
        else:
            if answer.get("error") and job.teacher is None:  # a stream that never finished
                self.count("teacher_errors")
        answer["model"] = answer.get("model") or job.metadata.get("teacher_model") or "unknown"
        if answer.get("provider") is None:
            price = self.prices.lookup(answer["model"])
            answer["provider"] = price.provider if price else "openai"
        if answer.get("response") is not None and answer.get("prompt_tokens") is None:
            answer["prompt_tokens"], answer["completion_tokens"], answer[records.ESTIMATED] = (
                pricing.estimate_usage(job.messages, answer["response"])
            )
        return answer

    def _student_answer(
        self, job: Job, metadata: dict[str, Any], lane: Lane | None = None
    ) -> dict[str, Any] | None:
        """One student's answer to the job (``lane``: which student; default the first)."""
        lane = lane or self.fanout.lane(None)
        served = lane is self.fanout.lane(getattr(job.route, "student", None))
        if served and job.student_result is not None:  # this student served the user
            return records.work_fields(job.student_result)
        base = {"model": lane.backend.model, "provider": lane.backend.provider}
        if job.student_error is not None and (served or self._closed):
            return {**base, "error": job.student_error}  # at shutdown: no student is asked
        if not lane.breaker.allow():
            self.count("breaker_skipped")
            lane.counts["breaker_skipped"] += 1
            if not self.record_breaker_skips:
                return None
            return {**base, "error": BREAKER_OPEN}
        try:
            result = lane.backend.chat(
                job.messages,
                temperature=job.options.get("temperature"),
                max_tokens=job.options.get("max_tokens"),
            )
        except Exception as exc:
            lane.breaker.failure()
            self.count("student_errors")
            lane.counts["errors"] += 1
            if isinstance(exc, BackendError) and exc.kind == "timeout":
                self.count("student_timeouts")
                lane.counts["timeouts"] += 1
            self.last_error = f"student {lane.name}: {exc}"
            return {**base, "error": error_text(exc)}
        lane.breaker.success()
        self.count("student_ok")
        lane.counts["ok"] += 1
        return records.work_fields(result)

    def _cost(
        self, answer: dict[str, Any], who: str, metadata: dict[str, Any], lane: Lane | None = None
    ) -> None:
        monthly = self.settings.student_monthly_cost_usd
        if lane is not None and lane.spec.registered:
            monthly = lane.spec.monthly_cost_usd or 0.0
        fields = records.cost_fields(answer, who, self.prices, monthly)
        if fields is None:
            metadata.setdefault("cost_unknown", []).append(who)
            with self._count_lock:
                self._unknown[str(answer.get("model"))] += 1
        else:
            answer.update(fields)

    def _similarity(
        self, teacher: dict[str, Any], student: dict[str, Any], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        if teacher.get("error"):  # an unfinished answer (a cut stream): no score
            return {"method": self.similarity.name, "score": None}
        found = compare(self.similarity, teacher.get("response"), student.get("response"))
        if found.error is not None:
            self.count("similarity_errors")
            metadata["similarity_error"] = found.error
        return {"method": found.method, "score": found.score}

    # --- writing -------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            with self._cond:
                if not (self._pending or self._writer.held or self._closed):
                    self._cond.wait()  # asleep until records arrive: no idle wake-ups
                self._cond.wait(timeout=self.flush_interval_s)  # a batch gathers
                closed = self._closed
            self._write_pending()
            if closed and not self._threads_alive():
                return

    def _threads_alive(self) -> bool:
        return any(t.is_alive() for t in self._threads[:-1])

    def _write_pending(self) -> bool:
        """Write what is pending; on failure keep it (bounded) for the next try."""
        with self._write_lock:  # a flush waits for the writer thread's batch in flight
            return self._write_batch()

    def _write_batch(self) -> bool:
        with self._cond:
            batch, self._pending = self._pending, []
        if not batch and not self._writer.held:
            return True
        written = 0
        try:
            self._writer.finish_torn()  # the rest of a line a failed write left torn
            if self._torn_ids:  # that line is whole now: its job is done
                self._journal.done(self._torn_ids)
                self._torn_ids = []
            # Small slices with a GIL hand-off between them: the app's request thread never
            # waits behind one long JSON-encoding burst of this background thread.
            while written < len(batch):
                part = batch[written : written + WRITE_SLICE]
                try:
                    self._writer.append_many(part)
                except LogWriteError as exc:  # part of the slice is on disk: never re-send it
                    whole = max(0, exc.written - self._writer.held)  # the torn one: when whole
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
            rest = batch[written:]
            self.count("write_errors")
            self.last_error = f"log write to {self.log_dir} failed: {exc}"
            log.warning("%s (%d records kept for retry)", self.last_error, len(rest))
            with self._cond:
                self._pending = rest + self._pending
                overflow = len(self._pending) - self._pending_cap
                if overflow > 0:  # oldest go first; counted, never silent
                    self._journal.done([r["id"] for r in self._pending[:overflow]])
                    del self._pending[:overflow]
                    self.count("lost", overflow)
            return False
        if self.last_error and self.last_error.startswith("log write to "):
            self.last_error = None  # recovered: the log is writable again
        return True

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until queued jobs are processed, then write everything pending.

        True when nothing is left; False when the timeout passed or the log is unwritable.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        link = self._link
        ok = True
        if link is not None and not link.dead:
            ok = link.flush(timeout)
            if link.dead:  # it died meanwhile: its jobs are here now
                ok = True
        if self._journal is None:
            return ok
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return self._write_pending() and ok

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, stop the threads and close the log files. Safe to call twice."""
        if self._closed:
            return True
        link = self._link
        linked_ok = True
        if link is not None and not link.dead:
            linked_ok = link.close(timeout)
            self._companion_final = dict(link.stats)
        if self._journal is None:  # the companion did it all
            self._closed = True
            self._writer.close()
            _LIVE.discard(self)
            left = self._companion_final.get("unfinished_at_exit", 0)
            return linked_ok and not left
        done = self.flush(timeout)
        self._closed = True
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
        self.fanout.close()
        self._writer.close()
        left = self._journal.close()
        if left:
            self.count("unfinished_at_exit", left)
            self.last_error = (
                f"{left} answers were still with the student at shutdown: logged when it "
                f"answers if this process lives on, else by the next start on this log folder "
                f"(kept in {self._journal.folder}); never twice"
            )
            log.warning("%s", self.last_error)
        _LIVE.discard(self)
        return done and not left and linked_ok

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
                records = self._process(job)
                if records:
                    with self._cond:
                        self._pending.extend(records)
            except Exception as exc:
                self.count("lost")
                self.last_error = f"shutdown: {exc!r}"
            finally:
                self._queue.task_done()

    def __enter__(self) -> ShadowCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The shadow collector: hand each teacher answer to the background, pair it with the student's.

The request path (:mod:`shadowtutor.collect.path`, used by the wrapper in
:mod:`shadowtutor.collect.wrapper` and the proxy in :mod:`shadowtutor.collect.proxy`) asks the
collector: :meth:`ShadowCollector.begin` decides a request (routing with this collector's
settings, sampling, eligibility), :meth:`ShadowCollector.student_call` lets the student serve
it (breaker, fallback), :meth:`ShadowCollector.hand_off` builds the :class:`Job` and gives it
to the executor, which never makes the request path wait: a full queue drops the job and
counts it.

The collector is only this front. What happens to a job lives in its own rooms:

* :mod:`shadowtutor.collect.work`: the teacher's answer (read from the job, or a background
  call when the student served the user), every student's answer (circuit breaker, timeout
  ``SHADOWTUTOR_STUDENT_TIMEOUT_S``), similarity (``SHADOWTUTOR_SIMILARITY``);
* :mod:`shadowtutor.collect.records`: the record, pure (cost, detection, the fields);
* :mod:`shadowtutor.collect.executors`: where that runs, behind one interface: worker threads
  and a writer thread here (:mod:`~shadowtutor.collect.executors.threads`), or the companion
  process (:mod:`~shadowtutor.collect.executors.companion`, ``SHADOWTUTOR_COMPANION``);
* :mod:`shadowtutor.collect.journal`: nothing acknowledged is lost to a crash.

Every shadowed request becomes a record, student failures included. Nothing raises into the
caller; :meth:`ShadowCollector.stats` counts what happened (a model missing from the price
table is counted in ``stats()["unknown_models"]``, never a silent $0), and :meth:`flush`
(also run at interpreter exit) drains the queue and writes what is pending.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import threading
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shadowtutor import detect
from shadowtutor.backends import Answer, Backend
from shadowtutor.collect import records
from shadowtutor.collect.counters import Counters
from shadowtutor.collect.executors.base import Executor
from shadowtutor.collect.executors.companion import CompanionExecutor, Link, start_companion
from shadowtutor.collect.executors.threads import ThreadExecutor
from shadowtutor.collect.feedback import FeedbackDesk, Outcome
from shadowtutor.collect.job import Call, Context, Job
from shadowtutor.collect.openai_shape import ChatRequest
from shadowtutor.collect.request_ids import request_id
from shadowtutor.collect.sampling import sampled, sampling_key
from shadowtutor.collect.work import Work
from shadowtutor.config import Settings
from shadowtutor.gate import routing
from shadowtutor.log import schema
from shadowtutor.log.write import LogWriter
from shadowtutor.router import live
from shadowtutor.similarity import SimilarityMethod

log = logging.getLogger("shadowtutor.collector")

_LIVE: weakref.WeakSet[ShadowCollector] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for collector in list(_LIVE):
        collector.close(timeout=5.0)


class ShadowCollector:
    """The request path's collector (see the module docstring).

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
    ):
        self.settings = s = settings or Settings.load()
        self.counters = Counters()
        self.work = Work(
            s,
            self.counters,
            student=student,
            similarity=similarity,
            record_breaker_skips=record_breaker_skips,
        )
        self.student, self.breaker = self.work.student, self.work.breaker
        self.fanout = self.work.fanout
        self.log_dir = Path(log_dir) if log_dir else s.log_path
        self.sample_percent = s.sample_percent if sample_percent is None else sample_percent
        self.eligible = s.eligible
        self.queue_size = max(1, s.queue_size if queue_size is None else queue_size)
        self.writer = LogWriter(self.log_dir)
        self.feedback_desk = FeedbackDesk(
            self.log_dir,
            regenerate_window_s=s.regenerate_window_s,
            abandon_after_s=s.abandon_after_s,
        )
        self._closed = False
        self._warned_styles: set[str] = set()
        threads = {
            "workers": max(1, s.workers if workers is None else workers),
            "queue_size": self.queue_size,
            "batch_size": batch_size,
            "flush_interval_s": flush_interval_s,
        }
        injected = student is not None or similarity is not None
        wanted = s.companion if companion is None else companion
        there = self._companion(injected, threads, record_breaker_skips) if wanted else None
        self.executor: Executor = there or self._threads(threads)
        if refresh_routing:
            threading.Thread(
                target=self._keep_routing_warm, name="shadow-routing", daemon=True
            ).start()
        _LIVE.add(self)

    def _threads(self, threads: dict[str, Any], skip: set[str] | None = None) -> ThreadExecutor:
        return ThreadExecutor(
            self.work, self.counters, self.writer, log_dir=self.log_dir, skip=skip, **threads
        )

    def _companion(
        self, injected: bool, threads: dict[str, Any], record_breaker_skips: bool
    ) -> CompanionExecutor | None:
        """The companion process's executor, else None (``last_error`` says why)."""
        if injected or not isinstance(self.log_dir, Path):
            why = "a student or similarity object was passed in" if injected else "a bucket log"
            self.last_error = f"companion not used ({why}): the shadow work runs in this process"
            return None
        config = {"settings": dataclasses.asdict(self.settings), "log_dir": str(self.log_dir)}
        return start_companion(
            config | threads | {"record_breaker_skips": record_breaker_skips},
            counters=self.counters,
            local=lambda skip: self._threads(threads, skip),
            listeners=self.writer.listeners,
            backlog_cap=self.queue_size,
        )

    @property
    def companion(self) -> Link | None:
        """The companion process's link, when the work is handed to one."""
        ex = self.executor
        return ex.link if isinstance(ex, CompanionExecutor) else None

    @property
    def last_error(self) -> str | None:
        return self.counters.last_error

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self.counters.last_error = value

    def count(self, name: str, n: int = 1) -> None:
        self.counters.count(name, n)

    def _keep_routing_warm(self) -> None:
        """Keep routing's background refresher of this collector's database running while the
        collector lives, and the fan-out's students fresh (their reads never land on a
        request thread; see routing)."""
        while not self._closed:
            try:
                routing.watch(self.settings.db_url)
                live.watch(self.settings.db_url)  # the request router's state, read likewise
                self.fanout.lanes()  # the students too: serving never reads the registry
            except Exception as exc:  # routing reports its own problems; never die here
                self.last_error = f"routing refresh: {exc!r}"
            try:
                self.feedback_desk.tick()  # implicit feedback, off the request path
            except Exception as exc:
                self.last_error = f"implicit feedback: {exc!r}"
            time.sleep(1.0)

    # --- request path ----------------------------------------------------------------------------
    def decide(
        self,
        messages: list[dict[str, Any]],
        *,
        user: str | None = None,
        conversation_id: str | None = None,
        category: str | None = None,
        kind: str = "plain",
        stream: bool = False,
    ) -> tuple[routing.Route, bool, str | None]:
        """(route, shadowed?, category) for one request; never raises.

        The category is the caller's, else detected (cheap keyword rules) because routing and
        eligibility need it before the request is answered. A request whose ``kind`` the
        student may not serve (:func:`routing.by_kind`) goes to the teacher, counted by reason.
        """
        try:
            if category is None:
                category = detect.detect_category(schema.prompt_text(messages))
            eligible = not self.eligible or category in self.eligible
            key = user or conversation_id  # a user stays with the same model across chats
            try:
                route = routing.route(key=key, category=category, settings=self.settings)
            except Exception as exc:  # a broken router must not break the app
                self.count("route_errors")
                self.last_error = f"route(): {exc!r}"
                route = routing.Route("teacher", 0, None, eligible)
            # in routed mode the student's router decides per request (never raises)
            route = live.apply(
                route,
                url=self.settings.db_url,
                messages=messages,
                category=category,
                kind=kind,
                stream=stream,
            )
            if route.served_by == "student" and not eligible:
                route = routing.Route("teacher", route.stage, route.bucket, eligible)
            route = routing.by_kind(route, kind)
            if route.reason is not None:
                self.count("teacher_only")
                self.counters.teacher_only(route.reason)
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
            kind=request.kind,
            stream=request.stream,
        )
        self.feedback_desk.request(call.id, context.conversation_id, request.messages)
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
                # the request's tools and response format too: a kind with its own GO is
                # served with them (in the student's API's form, as the shadow call gets them)
                request, features = call.request, call.request.features
                result = (
                    lane.backend.chat(request.messages, **request.options, features=features)
                    if features
                    else lane.backend.chat(request.messages, **request.options)
                )
            except Exception as exc:
                lane.breaker.failure()
                self.count("student_fallbacks")
                self.last_error = f"student (serving): {exc}"
                call.fell_back(exc)
                return None
            lane.breaker.success()
            return result  # served once validate() lets it through (counted there)
        call.fell_back(None)
        return None

    def validate(self, call: Call, result: Answer) -> bool:
        """Whether the student's answer to ``call`` is served (counted in
        ``served_by_student``). Without a validator threshold on its route, yes; in the
        router's cascade mode, as the validator says (:func:`shadowtutor.router.live.validate`,
        which never raises): sent back, the teacher answers, the answer is kept as the record's
        student answer, counted by reason; the check's time goes to the record's metadata."""
        if call.route.validator_threshold is not None and call.request is not None:
            started = time.perf_counter()
            call.route = live.validate(
                call.route,
                url=self.settings.db_url,
                messages=call.request.messages,
                answer=records.answer_fields(result),
                category=call.category,
            )
            call.metadata["validator_ms"] = round((time.perf_counter() - started) * 1000, 3)
            if call.route.served_by != "student":
                call.sent_back = result
                self.count("validator_sent_back")
                self.count("teacher_only")
                self.counters.teacher_only(call.route.reason or "validator")
                return False
        self.count("served_by_student")
        return True

    def hand_off(self, call: Call, **answers: Any) -> None:
        """Queue the pair of a shadowed call with the answers the request path has (see
        :class:`Job`); an unshadowed call is left alone. Never raises into the app."""
        if not call.shadowed:
            return
        try:
            self.submit(call.job(**answers))
        except Exception as exc:
            self.last_error = f"submit: {exc!r}"

    def teacher_only(self, call: Call, reason: str) -> None:
        """``call`` may not be served by the student (a call style whose answer the student
        cannot give, e.g. ``parse()``): routed to it, it goes to the teacher, counted by
        ``reason``."""
        if call.route.served_by == "student":
            r = call.route
            call.route = routing.Route("teacher", r.stage, r.bucket, r.eligible, None, reason)
            self.count("teacher_only")
            self.counters.teacher_only(reason)

    def unrecorded(self, style: str) -> None:
        """A call the wrapper passes through without a record (``with_raw_response``,
        ``stream()``...): counted, and said once per style in a warning."""
        self.count("unrecorded_calls")
        if style not in self._warned_styles:
            self._warned_styles.add(style)
            log.warning(
                "ShadowTutor: %s calls go to the teacher untouched and are not recorded "
                "(counted in stats()['unrecorded_calls']); use create() to shadow them",
                style,
            )

    def teacher_failed(self) -> None:
        """The teacher answered the app with an error (the app gets it unchanged)."""
        self.count("teacher_errors")

    def stream_abandoned(self) -> None:
        """The app stopped reading a teacher stream early: no complete answer to log."""
        self.count("streams_abandoned")

    def submit(self, job: Job, *, block: bool = False, timeout: float | None = None) -> bool:
        """Hand a job to the executor; False (and counted as dropped) when it is full or the
        collector closed. The request path uses the default ``block=False``; replay blocks so
        nothing is skipped."""
        if self._closed:
            self.count("dropped")
            return False
        if job.ts is None:  # the record's time is the request's, not the worker's
            job.ts = datetime.now(UTC)
        if job.id is None:  # fixed now: the journal and the log must agree on it
            job.id = schema.new_id()
        return self.executor.submit(job, block=block, timeout=timeout)

    def feedback(
        self,
        answer: Any,
        kind: str,
        value: Any = None,
        *,
        comment: str | None = None,
        **fields: Any,
    ) -> Outcome:
        """Record a user's feedback on an answer: ``answer`` is what a wrapped client returned
        (or its request id, ``shadowtutor.request_id(response)``); ``kind`` is ``thumbs``
        (value ``"up"`` / ``"down"``), ``rating`` (a number, ``scale=`` 5 unless given),
        ``correction`` (value: the answer the user wanted), ``flag`` (value: the reason) or
        ``regenerate`` / ``abandoned``; ``fields``: ``event_id``, ``user``, ``conversation_id``,
        ``ts``, ``metadata``, ``text``, ``scale``. Written to the log before it returns; never
        raises: the :class:`Outcome` says accepted, duplicate, malformed or write_failed
        (each counted in ``stats()["feedback"]``)."""
        rid = answer if isinstance(answer, str) else request_id(answer)
        event = {"request_id": rid, "kind": kind, "value": value, "comment": comment} | fields
        return self.feedback_desk.take([event])[0]

    def wrap(self, client: Any) -> Any:
        """Wrap an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client, or an
        ``anthropic.Anthropic`` or ``AsyncAnthropic`` one (see ``collect.wrapper``)."""
        from shadowtutor.collect.wrapper import wrap

        return wrap(client, self)

    # --- stats, flush, close -------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters since start: what was enqueued, dropped, logged, failed, and why; with
        the companion, its counters added (as of its last report, at most about a second old,
        exact after :meth:`flush`)."""
        out = {"companion": None} | self.work.stats(self.executor.stats())
        return out | {
            "feedback": self.feedback_desk.stats(),
            "queue_size": self.queue_size,
            "routing_fallbacks": routing.fallbacks(),
            "router": live.counts(),  # the request router's decisions and failures, by outcome
            "log_dir": str(self.log_dir),
        }

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until queued jobs are processed, then write everything pending.

        True when nothing is left; False when the timeout passed or the log is unwritable.
        """
        self.feedback_desk.tick()
        return self.executor.flush(timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, stop the executor and close the log files. Safe to call twice."""
        if self._closed:
            return True
        done = self.executor.close(timeout)
        self._closed = True
        self.work.close()
        self.feedback_desk.close()
        self.writer.close()
        _LIVE.discard(self)
        return done

    def __enter__(self) -> ShadowCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

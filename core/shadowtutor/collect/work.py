"""The work of one job: ask the teacher (when it is still to be asked) and every student, then
build the records (:mod:`shadowtutor.collect.records`).

:class:`Work` is what an executor runs for each job, in this process or in the companion's
child; it calls the student (timeout ``SHADOWTUTOR_STUDENT_TIMEOUT_S``) unless that student's
circuit breaker is open, and counts what happened in the shared :class:`Counters`. Every
shadowed request becomes a record, student failures included (``student.error`` says
``timeout: ...``, ``unavailable: ...``, ``circuit breaker open`` ...). A student whose
server refuses a feature of the request (an HTTP 400 to tools, a JSON schema, images) is
recorded as ``unsupported: tools`` (``schema``, ``images``) and counted apart
(``student_unsupported``), never as a breaker failure.
"""

from __future__ import annotations

from typing import Any

from shadowtutor.backends import Backend, BackendError, BackendHTTPError, student_backend
from shadowtutor.backends.breaker import Breaker
from shadowtutor.collect import agreement, records
from shadowtutor.collect.counters import Counters, merged
from shadowtutor.collect.job import Job, as_message
from shadowtutor.collect.responses_shape import CONTEXT_HELD
from shadowtutor.collect.sampling import sampling_key
from shadowtutor.config import Settings
from shadowtutor.cost import pricing
from shadowtutor.errors import error_text
from shadowtutor.log.errors import RecordError
from shadowtutor.log.schema import check_for_log
from shadowtutor.similarity import SimilarityMethod, compare, get_method
from shadowtutor.students.fanout import Fanout, Lane

BREAKER_OPEN = "circuit breaker open"
# What a student's 400 to a request of each kind means: its server lacks the feature.
FEATURE_OF_KIND = {"tools": "tools", "json_schema": "schema", "json_object": "schema"}
FEATURE_OF_KIND["images"] = "images"


def unsupported(exc: Exception, kind: str) -> str | None:
    """The feature a student's server refused (``tools``, ``schema``, ``images``): an HTTP
    400 to a request of that kind; None for any other failure (a quality failure)."""
    if isinstance(exc, BackendHTTPError) and exc.status == 400:
        return FEATURE_OF_KIND.get(kind)
    return None


def own_metadata(shared: dict[str, Any]) -> dict[str, Any]:
    """One record's copy of the request's metadata: its lists are its own, so what one
    student's record adds (its ``cost_unknown``) never shows in another's."""
    return {k: list(v) if isinstance(v, list) else v for k, v in shared.items()}


class Work:
    """Turns one job into its records (see the module docstring).

    ``student`` (a test's, a bench's) replaces the configured student and the registry's;
    ``closing`` set, a job whose student already failed is not asked again (shutdown)."""

    def __init__(
        self,
        settings: Settings,
        counters: Counters,
        *,
        student: Backend | None = None,
        similarity: SimilarityMethod | None = None,
        record_breaker_skips: bool = True,
    ):
        self.settings = settings
        self.counters = counters
        self.student = student or student_backend(settings)
        self.similarity = similarity or get_method(settings)
        self.prices = pricing.load_table(settings.price_table)
        self.record_breaker_skips = record_breaker_skips
        self.breaker = Breaker(settings.breaker_failures, settings.breaker_cooldown_s)
        # Every active student, each with its own backend, timeout and breaker; while none is
        # registered (or a test passes its `student`) the one lane is self.student/self.breaker.
        self.fanout = Fanout(
            settings,
            default_backend=self.student,
            default_breaker=self.breaker,
            fixed=student is not None,
        )
        self.closing = False

    def count(self, name: str, n: int = 1) -> None:
        self.counters.count(name, n)

    def records_of(self, job: Job) -> list[dict[str, Any]]:
        """The records of one job: one per student that answered it (see
        :mod:`shadowtutor.students.fanout`), sharing the job's id as ``request_id``; the first
        (the serving student's, else the first active one's) is the primary record, whose id
        is the job's and whose teacher cost is the one counted."""
        shared = dict(job.metadata)
        job.messages = [as_message(m) for m in job.messages]
        teacher = self.teacher_answer(job)
        teacher_estimated = bool(teacher.pop(records.ESTIMATED, False))
        route = job.route or records.NO_ROUTE
        key = sampling_key(job.messages, job.conversation_id, job.user_hash)
        if job.metadata.get("context") == CONTEXT_HELD:
            # the teacher holds the conversation (previous_response_id): the student would
            # answer a partial context, so it is not asked and nothing is compared
            self.count("context_held")
            found: list[tuple[Lane, dict[str, Any]]] = []
            lead, taken = self.fanout.lane(route.student), 0
        else:
            found, lead, taken = self.fanout.answers(
                key, lambda lane: self.student_answer(job, lane), first=route.student
            )
        if not found:
            if taken:  # asked, but a skip that is not recorded (record_breaker_skips=False)
                return []
            found = [(lead, {})]  # no student's share took it: the teacher's answer alone
        self._price(teacher, "teacher", shared, None)
        if teacher_estimated:
            self.count("usage_estimated")
        out = []
        for n, (lane, student) in enumerate(found):
            record = self._record(
                job, own_metadata(shared), teacher, dict(student), lane, teacher_estimated
            )
            if n > 0:
                record = records.secondary(record, job.id or "", lane.name)
            try:  # never write what `logs validate` would reject (e.g. `messages: []`)
                out.append(check_for_log(record))
            except RecordError as exc:
                self.count("invalid")
                self.counters.last_error = f"record not logged: {exc}"
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
        self._price(student, "student", metadata, lane)
        similarity, agreed = self._compare(job, teacher, student, metadata)
        return records.build(
            job,
            teacher=teacher,
            student=student,
            student_name=lane.name,
            similarity=similarity,
            metadata=metadata,
            agreed=agreed,
        )

    def _compare(
        self, job: Job, teacher: dict[str, Any], student: dict[str, Any], metadata: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(similarity, agreement) of a pair, by what the answers are
        (:mod:`shadowtutor.collect.agreement`): tool calls and JSON get no text similarity."""
        if not student:
            return None, None
        answered = student.get("error") is None and not teacher.get("error")
        schema = agreement.schema_of(job.features)
        if answered and agreement.needs_calls(teacher, student):
            tools = job.features.get("tools") or job.features.get("functions")
            return self._no_text(), agreement.tool_calls(teacher, student, tools)
        if answered and schema is not None:
            return self._no_text(), agreement.json_answers(teacher, student, schema)
        similarity = self._similarity(teacher, student, metadata)
        return similarity, agreement.text(similarity) if answered else None

    def _no_text(self) -> dict[str, Any]:
        return {"method": self.similarity.name, "score": None}

    def teacher_answer(self, job: Job) -> dict[str, Any]:
        """The teacher's answer fields, from the job's form or a background call now."""
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

    def student_answer(self, job: Job, lane: Lane | None = None) -> dict[str, Any] | None:
        """One student's answer to the job (``lane``: which student; default the first)."""
        lane = lane or self.fanout.lane(None)
        served = lane is self.fanout.lane(getattr(job.route, "student", None))
        if served and job.student_result is not None:  # this student served the user
            return records.work_fields(job.student_result)
        base = {"model": lane.backend.model, "provider": lane.backend.provider}
        if job.student_error is not None and (served or self.closing):
            return {**base, "error": job.student_error}  # at shutdown: no student is asked
        if not lane.breaker.allow():
            self.count("breaker_skipped")
            lane.counts["breaker_skipped"] += 1
            if not self.record_breaker_skips:
                return None
            return {**base, "error": BREAKER_OPEN}
        features: dict[str, Any] = {"features": job.features} if job.features else {}
        try:
            result = lane.backend.chat(
                job.messages,
                temperature=job.options.get("temperature"),
                max_tokens=job.options.get("max_tokens"),
                **features,
            )
        except Exception as exc:
            missing = unsupported(exc, job.kind)
            if missing is not None:  # the server is up; it cannot do what was asked
                lane.breaker.success()
                self.count("student_unsupported")
                lane.counts["unsupported"] += 1
                return {**base, "error": f"unsupported: {missing} ({error_text(exc)})"}
            lane.breaker.failure()
            self.count("student_errors")
            lane.counts["errors"] += 1
            if isinstance(exc, BackendError) and exc.kind == "timeout":
                self.count("student_timeouts")
                lane.counts["timeouts"] += 1
            self.counters.last_error = f"student {lane.name}: {exc}"
            return {**base, "error": error_text(exc)}
        lane.breaker.success()
        self.count("student_ok")
        lane.counts["ok"] += 1
        return records.work_fields(result)

    def _price(
        self, answer: dict[str, Any], who: str, metadata: dict[str, Any], lane: Lane | None
    ) -> None:
        monthly = self.settings.student_monthly_cost_usd
        if lane is not None and lane.spec.registered:
            monthly = lane.spec.monthly_cost_usd or 0.0
        fields = records.cost_fields(answer, who, self.prices, monthly)
        if fields is None:
            metadata.setdefault("cost_unknown", []).append(who)
            self.counters.unknown_model(str(answer.get("model")))
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

    def stats(self, more: dict[str, Any]) -> dict[str, Any]:
        """The counters, the breaker and the students, with an executor's stats added (see
        :func:`shadowtutor.collect.counters.merged`)."""
        counts, unknown = self.counters.snapshot()
        base: dict[str, Any] = counts | {
            "breaker": self.breaker.state,
            "breaker_opened": self.breaker.opened_count,
            "breaker_abandoned_probes": self.breaker.abandoned_probes,
            "unknown_models": unknown,
            "teacher_only_by_reason": self.counters.teacher_only_counts(),
            "forwarded_by_path": self.counters.forwarded_counts(),
            "last_error": self.counters.last_error,
            "similarity_method": self.similarity.name,
            "students": self.fanout.stats(),
        }
        return merged(base, more)

    def close(self) -> None:
        self.fanout.close()

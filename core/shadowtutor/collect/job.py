"""What one request is while it is answered (:class:`Call`) and what the request path hands
to the collector's executor (:class:`Job`).

A :class:`Call` is made by :meth:`ShadowCollector.begin` from the parsed request and the
caller's :class:`Context`: the route, whether the pair is shadowed, the category, and what
happened to the student while serving. ``call.job(...)`` (called by the collector's
``hand_off``) turns it into a :class:`Job`, which carries the prompt, the context and the
teacher's answer in whatever form the request path had it (a response object, stream
chunks, raw proxy bytes, a replayed record, or a callable for a background teacher call);
:mod:`shadowtutor.collect.openai_shape` turns each form into the record's answer fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shadowtutor.backends import Answer
from shadowtutor.collect import anthropic_shape, responses_shape
from shadowtutor.collect.openai_shape import (
    ChatRequest,
    teacher_from_chunks,
    teacher_from_completion,
    teacher_from_raw,
)
from shadowtutor.errors import error_text
from shadowtutor.gate import routing
from shadowtutor.log import schema
from shadowtutor.log.schema import pseudonymize_conversation

# protocol -> how its teacher answers read: (a response object, stream events, raw bytes)
READERS: dict[str, tuple[Callable[[Any], dict[str, Any]], Any, Any]] = {
    "openai.chat": (teacher_from_completion, teacher_from_chunks, teacher_from_raw),
    anthropic_shape.PROTOCOL: (
        anthropic_shape.teacher_from_message,
        anthropic_shape.teacher_from_events,
        anthropic_shape.teacher_from_raw,
    ),
    responses_shape.PROTOCOL: (
        responses_shape.teacher_from_response,
        responses_shape.teacher_from_events,
        responses_shape.teacher_from_raw,
    ),
}


@dataclass
class Job:
    """One shadowed request, as handed from the request path to the workers.

    The teacher's answer comes in exactly one form: ``teacher_obj`` (a ChatCompletion or its
    dict), ``teacher_chunks`` (stream chunks, objects or dicts), ``teacher_raw`` (proxy bytes:
    JSON, or SSE when ``teacher_sse``), ``teacher`` (ready answer fields, e.g. from a replayed
    record) or ``teacher_call`` (a callable returning a Answer, run in the background).
    """

    messages: list[dict[str, Any]]
    source: str = "live"
    id: str | None = None
    ts: datetime | None = None
    user_hash: str | None = None
    conversation_id: str | None = None
    category: str | None = None
    language: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    route: routing.Route | None = None
    options: dict[str, Any] = field(default_factory=dict)  # temperature, max_tokens
    kind: str = "plain"  # the request's kind (openai_shape.request_kind)
    protocol: str = "openai.chat"  # the API the request was made in (READERS)
    features: dict[str, Any] = field(default_factory=dict)  # tools, response_format...
    teacher_obj: Any = None
    teacher_chunks: list[Any] | None = None
    teacher_raw: bytes | None = None
    teacher_sse: bool = False
    teacher: dict[str, Any] | None = None
    teacher_call: Callable[[], Answer] | None = None
    teacher_latency_ms: float | None = None
    teacher_ttft_ms: float | None = None
    student_result: Answer | None = None  # the student already answered (it served)
    student_error: str | None = None  # the student already failed (serving fell back)
    category_detected: bool = False  # the request path detected the category (for routing)

    def __post_init__(self) -> None:
        # The one place a record gets its conversation id: a raw id (an e-mail, a ticket
        # number) is pseudonymised like the user before anything stores it.
        self.conversation_id = pseudonymize_conversation(self.conversation_id)

    def teacher_fields(self) -> dict[str, Any] | None:
        """The teacher's answer fields from whichever form the job holds (a copy); None
        while a background teacher call is still to be made. Raises when the answer does
        not parse (the journal and the record each say so in their own way)."""
        if self.teacher is not None:
            return dict(self.teacher)
        from_obj, from_events, from_raw = READERS.get(self.protocol, READERS["openai.chat"])
        if self.teacher_obj is not None:
            return from_obj(self.teacher_obj)
        if self.teacher_chunks is not None:
            found: dict[str, Any] = from_events(self.teacher_chunks)
            return found
        if self.teacher_raw is not None:
            raw: dict[str, Any] = from_raw(self.teacher_raw, self.teacher_sse)
            return raw
        return None


def wire_route(r: routing.Route | None) -> list[Any] | None:
    """A route as JSON (its kinds left out: they were checked before the job existed)."""
    if r is None:
        return None
    fields = [r.served_by, r.stage, r.bucket, r.eligible, r.student, r.reason]
    routed = [r.router_version, r.router_score, r.router_threshold]
    return fields + routed + [r.validator_threshold, r.validator_score]


def route_of(wire: list[Any] | None) -> routing.Route | None:
    """The route of :func:`wire_route` (older entries have the first six or nine fields)."""
    if not wire:
        return None
    more = (list(wire[6:11]) + [None] * 5)[:5]
    served_by, stage, bucket, eligible, student, reason = (list(wire) + [None] * 6)[:6]
    return routing.Route(
        served_by,
        stage,
        bucket,
        eligible,
        student,
        reason,
        router_version=more[0],
        router_score=more[1],
        router_threshold=more[2],
        validator_threshold=more[3],
        validator_score=more[4],
    )


def wire_fields(job: Job) -> dict[str, Any]:
    """The fields of a job that cross to another process or a restart as they are (JSON-able):
    the journal and the companion's frame add the time, the teacher's answer and the student's
    result, each in its own form. The route keeps every field (the serving student too)."""
    r = job.route
    return {
        "id": job.id,
        "source": job.source,
        "messages": job.messages,
        "user_hash": job.user_hash,
        "conversation_id": job.conversation_id,
        "category": job.category,
        "language": job.language,
        "category_detected": job.category_detected,
        "metadata": job.metadata,
        "route": wire_route(r),
        "options": job.options,
        "kind": job.kind,
        "protocol": job.protocol,
        "features": job.features,
        "teacher_latency_ms": job.teacher_latency_ms,
        "teacher_ttft_ms": job.teacher_ttft_ms,
        "student_error": job.student_error,
    }


def as_message(msg: Any) -> dict[str, Any]:
    if isinstance(msg, dict):
        return msg
    if hasattr(msg, "model_dump"):  # a ChatCompletionMessage passed back in
        dumped: dict[str, Any] = msg.model_dump(exclude_none=True)
        return dumped
    return dict(msg)


# --- one request while it is answered -------------------------------------------------------


@dataclass(slots=True)
class Context:
    """The caller's shadow context of one request: the wrapper's ``shadow={...}`` argument, or
    the proxy's ``X-ShadowTutor-*`` headers. Never sent to the teacher."""

    user: str | None = None
    conversation_id: str | None = None
    category: str | None = None
    language: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_shadow(cls, shadow: dict[str, Any] | None) -> Context:
        """The wrapper's ``shadow={"user", "conversation_id", "category", "language",
        "metadata"}`` argument."""
        shadow = shadow or {}
        return cls(
            user=shadow.get("user"),
            conversation_id=shadow.get("conversation_id"),
            category=shadow.get("category"),
            language=shadow.get("language"),
            metadata=dict(shadow.get("metadata") or {}),
        )


TEACHER_ROUTE = routing.Route("teacher", 0, None, None)


@dataclass(slots=True)
class Call:
    """One request on its way: decided by :meth:`ShadowCollector.begin`, served by the request
    path (:mod:`shadowtutor.collect.path`), handed off with ``collector.hand_off``.

    ``origin`` is what the request path needs to answer it (the wrapper's ``create``
    arguments, the proxy's HTTP request and body); ``request`` is None for a request that is
    passed to the teacher untouched (a body the proxy cannot read)."""

    request: ChatRequest | None
    context: Context = field(default_factory=Context)
    route: routing.Route = TEACHER_ROUTE
    shadowed: bool = False
    category: str | None = None
    origin: Any = None
    student_error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # the student's answer the cascade's validator sent back (the teacher answered instead):
    # it is the record's student answer, the student is not asked again
    sent_back: Answer | None = None
    # the request's id from its start: the app gets it with the answer (collect.request_ids),
    # its record carries it as request_id, its feedback is keyed by it
    id: str = field(default_factory=schema.new_id)

    @property
    def user(self) -> str | None:
        """The context's user, else the request's ``user``/``safety_identifier``."""
        return self.context.user or (self.request.user if self.request else None)

    @property
    def stream(self) -> bool:
        return bool(self.request and self.request.stream)

    def fell_back(self, exc: BaseException | None) -> None:
        """The student did not serve (it failed with ``exc``, or its breaker is open): the
        teacher answers, and a failure is kept for the record."""
        self.route = dataclasses.replace(self.route, served_by="teacher")
        if exc is not None:
            self.student_error = error_text(exc)
            self.metadata["fallback"] = self.student_error

    def job(self, **answers: Any) -> Job:
        """The Job of this call, with the answers the request path has (see :class:`Job`)."""
        assert self.request is not None
        ctx = self.context
        return Job(
            messages=self.request.messages,
            id=self.id,
            user_hash=schema.pseudonymize(self.user),
            conversation_id=ctx.conversation_id,
            category=self.category,
            language=ctx.language,
            metadata=self.metadata | {"teacher_model": self.request.model},
            route=self.route,
            options=self.request.options,
            kind=self.request.kind,
            protocol=self.request.protocol,
            features=self.request.features,
            student_error=self.student_error,
            category_detected=ctx.category is None,
            **({"student_result": self.sent_back} | answers),
        )

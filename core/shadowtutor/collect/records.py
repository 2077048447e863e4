"""Building a shadow record: pure functions, a job and its answers in, a record out.

No threads, no I/O: :class:`shadowtutor.collect.work.Work` asks the teacher and the students
(and the similarity method) and calls these to price the answers and assemble the record;
the playground and replay serialize their answers with :func:`answer_fields`.

Cost policy: the teacher's cost is tokens times the versioned price table; a model missing
from the table gets ``cost_usd: null`` and its name in ``metadata.cost_unknown``, never a
silent $0. A local student (Ollama, or a model priced ``local`` in the table) costs $0 per
request in the record; a flat monthly cost (``SHADOWTUTOR_STUDENT_MONTHLY_COST_USD``) is not
spread per record, because the share depends on the month's volume.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from shadowtutor import detect, fastjson
from shadowtutor.backends import Answer
from shadowtutor.collect import agreement
from shadowtutor.collect.job import Job
from shadowtutor.cost import pricing
from shadowtutor.gate import routing
from shadowtutor.log.schema import make_record, prompt_text, secondary_id

ESTIMATED = "_estimated"  # an answer's fields while a job is processed: tokens estimated?
NO_ROUTE = routing.Route("teacher", 0, None, None)


def answer_fields(answer: Answer, *, digits: int = 3) -> dict[str, Any]:
    """The record's fields of one answer (latency and TTFT rounded to ``digits``)."""
    return {
        "model": answer.model,
        "provider": answer.provider,
        "response": answer.text if answer.error is None else None,
        "latency_ms": _round(answer.latency_ms, digits),
        "ttft_ms": _round(answer.ttft_ms, digits),
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "cost_usd": answer.cost_usd,
        "price_version": answer.price_version,
        "error": answer.error,
        "tool_calls": answer.tool_calls if answer.error is None else None,
        "refusal": answer.refusal,
        "finish_reason": answer.finish_reason,
        "cache_creation_tokens": answer.cache_creation_tokens,
        "cache_read_tokens": answer.cache_read_tokens,
    }


def work_fields(answer: Answer) -> dict[str, Any]:
    """:func:`answer_fields` and whether the tokens were estimated (:data:`ESTIMATED`, taken
    out before the record is made)."""
    return answer_fields(answer) | {ESTIMATED: answer.usage_estimated}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def cost_fields(
    answer: dict[str, Any], who: str, prices: pricing.PriceTable, monthly_usd: float
) -> dict[str, Any] | None:
    """The ``cost_usd``/``price_version`` fields of an answer (``who``: teacher or student;
    ``monthly_usd``: the student's flat monthly cost): ``{}`` when there is nothing to price
    (no answer, or a replayed one that has its cost), None when the model has no price."""
    if answer.get("response") is None or answer.get("cost_usd") is not None:
        return {}
    model = answer.get("model")
    if who == "student" and pricing.student_is_free(
        answer.get("provider"), model, prices, monthly_usd
    ):
        return {"cost_usd": 0.0, "price_version": prices.version}
    cost = prices.cost(
        model,
        answer.get("prompt_tokens"),
        answer.get("completion_tokens"),
        cache_write=answer.get("cache_creation_tokens"),
        cache_read=answer.get("cache_read_tokens"),
    )
    if cost is None:
        return None
    return {"cost_usd": round(cost, 10), "price_version": prices.version}


def language_and_category(job: Job) -> tuple[str | None, str | None, list[str]]:
    """The job's language and category, detected where the caller gave none, and which of
    them were detected (``metadata.detected``)."""
    detected = []
    language, category = job.language, job.category
    if language is None or category is None:
        found_language, found_category = detect.detect(prompt_text(job.messages))
        if language is None:
            language = found_language
            detected.append("language")
        if category is None:
            category = found_category
    if job.category is None or job.category_detected:
        detected.append("category")
    return language, category, detected


def digest(value: Any) -> str:
    """A short stable hash of a JSON value (canonical: sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def request_fields(job: Job) -> dict[str, Any]:
    """The record's ``request``: the kind, the tool names, hashes of the tool definitions
    and of the response format's schema."""
    tools = job.features.get("tools") or job.features.get("functions")
    names = None
    if isinstance(tools, list):
        names = [
            str((t.get("function") or t).get("name", "")) for t in tools if isinstance(t, dict)
        ]
    schema = agreement.schema_of(job.features)
    return {
        "kind": job.kind,
        "tools": names,
        "tools_hash": digest(tools) if tools else None,
        "schema_hash": digest(schema) if schema else None,
        # what review, export and replay need; a plain request has none
        "features": json_copy(job.features) if job.features else None,
    }


def json_copy(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as the JSON the app's client sent: an object JSON cannot hold (a client
    sentinel, a set) is written as its text rather than making the record unwritable."""
    copied: dict[str, Any] = fastjson.loads(fastjson.dumps(value, default=str))
    return copied


def build(
    job: Job,
    *,
    teacher: dict[str, Any],
    student: dict[str, Any],
    student_name: str,
    similarity: dict[str, Any] | None,
    metadata: dict[str, Any],
    agreed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of one job and one student's answer (priced, scored, as in the log)."""
    language, category, detected = language_and_category(job)
    if detected:
        metadata = metadata | {"detected": detected}
    route = job.route or NO_ROUTE
    return make_record(
        id=job.id,
        ts=job.ts,
        source=job.source,
        messages=job.messages,
        teacher=dict(teacher),
        student=student,
        user_hash=job.user_hash,
        conversation_id=job.conversation_id,
        category=category,
        language=language,
        similarity=similarity,
        routing={
            "served_by": route.served_by,
            "stage": route.stage,
            "bucket": route.bucket,
            "eligible": route.eligible,
            "reason": route.reason,
            "router_version": route.router_version,
            "router_score": route.router_score,
            "router_threshold": route.router_threshold,
            "validator_score": route.validator_score,
            "validator_threshold": route.validator_threshold,
        },
        metadata=metadata,
        request_id=job.id,
        student_name=student_name,
        protocol=job.protocol,
        request=request_fields(job),
        agreement=agreed,
    )


def secondary(record: dict[str, Any], job_id: str, student_name: str) -> dict[str, Any]:
    """A record of a further student of the same job: its own id, the job's ``request_id``."""
    return {**record, "id": secondary_id(job_id, student_name)}

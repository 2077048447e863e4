"""Building a shadow record: pure functions, a job and its answers in, a record out.

No threads, no I/O: the collector asks the teacher and the students and calls these; the
playground and replay serialize their answers with :func:`answer_fields`.
"""

from __future__ import annotations

from typing import Any

from shadowtutor.backends import Answer

ESTIMATED = "_estimated"  # an answer's fields while a job is processed: tokens estimated?


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
    }


def work_fields(answer: Answer) -> dict[str, Any]:
    """:func:`answer_fields` and whether the tokens were estimated (:data:`ESTIMATED`, taken
    out before the record is made)."""
    return answer_fields(answer) | {ESTIMATED: answer.usage_estimated}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)

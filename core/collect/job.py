"""What the request path hands to the collector's workers, and reading answers out of it.

A :class:`Job` carries the prompt, the caller's context and the teacher's answer in whatever
form the request path had it (a response object, stream chunks, raw proxy bytes, a replayed
record, or a callable for a background teacher call); the helpers here turn each form into
the record's answer fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shadowtutor import pricing
from shadowtutor.backends.clients import ChatResult
from shadowtutor.gate import routing
from shadowtutor.log.record import pseudonymize_conversation


@dataclass
class Job:
    """One shadowed request, as handed from the request path to the workers.

    The teacher's answer comes in exactly one form: ``teacher_obj`` (a ChatCompletion or its
    dict), ``teacher_chunks`` (stream chunks, objects or dicts), ``teacher_raw`` (proxy bytes:
    JSON, or SSE when ``teacher_sse``), ``teacher`` (ready answer fields, e.g. from a replayed
    record) or ``teacher_call`` (a callable returning a ChatResult, run in the background).
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
    teacher_obj: Any = None
    teacher_chunks: list[Any] | None = None
    teacher_raw: bytes | None = None
    teacher_sse: bool = False
    teacher: dict[str, Any] | None = None
    teacher_call: Callable[[], ChatResult] | None = None
    teacher_latency_ms: float | None = None
    teacher_ttft_ms: float | None = None
    student_result: ChatResult | None = None  # the student already answered (it served)
    student_error: str | None = None  # the student already failed (serving fell back)
    category_detected: bool = False  # the request path detected the category (for routing)

    def __post_init__(self) -> None:
        # The one place a record gets its conversation id: a raw id (an e-mail, a ticket
        # number) is pseudonymised like the user before anything stores it.
        self.conversation_id = pseudonymize_conversation(self.conversation_id)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def teacher_from_completion(obj: Any) -> dict[str, Any]:
    """Answer fields from a ChatCompletion (object or dict)."""
    choices = _get(obj, "choices") or []
    message = _get(choices[0], "message") if choices else None
    usage = _get(obj, "usage")
    return {
        "model": _get(obj, "model"),
        "response": _get(message, "content") or "",
        "prompt_tokens": _get(usage, "prompt_tokens"),
        "completion_tokens": _get(usage, "completion_tokens"),
    }


INCOMPLETE_STREAM = "incomplete: the teacher's stream ended without a finish reason or [DONE]"


def teacher_from_chunks(chunks: list[Any], *, done: bool = False) -> dict[str, Any]:
    """Answer fields from ChatCompletionChunks (objects or dicts) of one stream.

    A stream whose first choice never got a ``finish_reason`` (and, for raw SSE, that had no
    ``[DONE]``: ``done``) was cut: the answer keeps the text received but carries
    :data:`INCOMPLETE_STREAM` as its error, so it is never taken for a complete answer.
    """
    parts: list[str] = []
    model = None
    usage = None
    finished = done
    for chunk in chunks:
        model = model or _get(chunk, "model")
        usage = _get(chunk, "usage") or usage
        for choice in _get(chunk, "choices") or []:
            if _get(choice, "index", 0) == 0:
                parts.append(_get(_get(choice, "delta"), "content") or "")
                finished = finished or bool(_get(choice, "finish_reason"))
    answer = {
        "model": model,
        "response": "".join(parts),
        "prompt_tokens": _get(usage, "prompt_tokens"),
        "completion_tokens": _get(usage, "completion_tokens"),
    }
    if not finished:
        answer["error"] = INCOMPLETE_STREAM
    return answer


def sse_done(raw: bytes) -> bool:
    """Whether a server-sent-events body ended with ``data: [DONE]``."""
    return any(
        line.startswith(b"data:") and line[5:].strip() == b"[DONE]" for line in raw.splitlines()
    )


def parse_sse(raw: bytes) -> list[dict[str, Any]]:
    """The JSON ``data:`` events of a server-sent-events body (``[DONE]`` excluded)."""
    events = []
    for line in raw.splitlines():
        if line.startswith(b"data:"):
            data = line[5:].strip()
            if data and data != b"[DONE]":
                events.append(json.loads(data))
    return events


def as_message(msg: Any) -> dict[str, Any]:
    if isinstance(msg, dict):
        return msg
    if hasattr(msg, "model_dump"):  # a ChatCompletionMessage passed back in
        return msg.model_dump(exclude_none=True)
    return dict(msg)


def answer_from_result(result: ChatResult) -> dict[str, Any]:
    return {
        "model": result.model,
        "provider": result.provider,
        "response": result.text,
        "latency_ms": round(result.latency_ms, 3),
        "ttft_ms": None if result.ttft_ms is None else round(result.ttft_ms, 3),
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "_estimated": result.usage_estimated,
    }


def estimate_usage(messages: list[dict[str, Any]], text: str) -> tuple[int, int, bool]:
    prompt = " ".join(str(m.get("content") or "") for m in messages)
    return pricing.estimate_tokens(prompt), pricing.estimate_tokens(text), True


def error_text(exc: BaseException) -> str:
    kind = getattr(exc, "kind", None) or type(exc).__name__
    return f"{kind}: {exc}"[:500]

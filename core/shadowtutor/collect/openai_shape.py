"""The OpenAI chat shapes, in one place: reading a request, shaping and reading a response.

* :class:`ChatRequest` is the one parser of an OpenAI chat request (the wrapper's ``create``
  arguments and the proxy's JSON body alike): messages, model, ``max_completion_tokens`` (or
  the older ``max_tokens``), temperature, ``stream``, ``stream_options.include_usage`` and the
  end user (``user``, or its successor ``safety_identifier``).
* :func:`completion_dict`, :func:`chunk_dicts` and :func:`sse_body` shape a student's answer
  as the teacher's response (a ``chat.completion``, its ``chat.completion.chunk`` stream, or
  that stream as server-sent events); :func:`result_from_completion` reads a teacher's
  response back as a :class:`Answer`.
* :func:`teacher_from_completion`, :func:`teacher_from_chunks` and :func:`parse_sse` read the
  answer fields of a record out of a response object, stream chunks (objects or dicts) or an
  SSE body.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from shadowtutor import fastjson
from shadowtutor.backends import Answer

# --- requests -------------------------------------------------------------------------------


class NotAChatRequest(ValueError):
    """The body has no list of messages: not ours to judge (the teacher answers it)."""


def _iterable_of_messages(value: Any) -> TypeGuard[Iterable[Any]]:
    """An iterable the OpenAI client would send as a JSON array of messages (a tuple, a
    generator), not a string, bytes or a mapping (which it sends as they are)."""
    if isinstance(value, str | bytes | bytearray | Mapping) or value is None:
        return False
    return isinstance(value, Iterable)


@dataclass(slots=True)
class ChatRequest:
    """What ShadowTutor reads from one OpenAI chat request (see the module docstring)."""

    body: dict[str, Any]  # the request as it goes to the teacher
    messages: list[Any]  # a copy: the app may append to its own list after the call
    model: str | None
    max_tokens: int | None
    temperature: float | None
    stream: bool
    include_usage: bool
    user: str | None

    @classmethod
    def parse(cls, body: dict[str, Any], *, coerce: bool = False) -> ChatRequest:
        """Read ``body``. With ``coerce`` (the wrapper) an iterable of messages (a tuple, a
        generator) is made a list in ``body`` itself, because the API call would use it up;
        anything else that is not a list (a string, a dict, ``None``; in the proxy, any
        non-list) raises :class:`NotAChatRequest` and ``body`` is left as it was, so the teacher
        refuses it exactly as it would without ShadowTutor."""
        messages = body.get("messages")
        if not isinstance(messages, list):
            if not (coerce and _iterable_of_messages(messages)):
                # a string, a dict, None...: the teacher answers (and refuses) it unchanged
                raise NotAChatRequest("'messages' is not a list")
            messages = list(messages)
            body["messages"] = messages
        user = body.get("user") or body.get("safety_identifier")
        return cls(
            body=body,
            messages=list(messages),
            model=body.get("model"),
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            temperature=body.get("temperature"),
            stream=bool(body.get("stream")),
            include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
            user=user if isinstance(user, str) else None,
        )

    @property
    def options(self) -> dict[str, Any]:
        """The sampling options the student gets too (``temperature``, ``max_tokens``)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}

    def teacher_body(self) -> dict[str, Any]:
        """The request for a background (non-streamed) teacher call."""
        return {k: v for k, v in self.body.items() if k not in ("stream", "stream_options")}


# --- shaping a student answer as an OpenAI response ---------------------------------------------


def completion_dict(result: Answer, *, id: str | None = None) -> dict[str, Any]:
    """An OpenAI chat.completion object (as a dict) carrying a student's answer."""
    return {
        "id": id or f"chatcmpl-st-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "finish_reason": result.finish_reason or "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens or 0,
            "completion_tokens": result.completion_tokens or 0,
            "total_tokens": (result.prompt_tokens or 0) + (result.completion_tokens or 0),
        },
    }


def chunk_dicts(
    result: Answer, *, include_usage: bool = False, id: str | None = None
) -> list[dict[str, Any]]:
    """The chat.completion.chunk objects (as dicts) of a student's answer, as a stream."""
    full = completion_dict(result, id=id)
    base = {k: full[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [
        chunk({"role": "assistant", "content": ""}, None),
        chunk({"content": result.text}, None),
        chunk({}, full["choices"][0]["finish_reason"]),
    ]
    if include_usage:
        chunks.append(base | {"choices": [], "usage": full["usage"]})
    return chunks


def sse_body(result: Answer, *, include_usage: bool = False) -> bytes:
    """A student's answer as the server-sent events of a streamed chat completion."""
    events = b"".join(
        b"data: " + json.dumps(c).encode() + b"\n\n"
        for c in chunk_dicts(result, include_usage=include_usage)
    )
    return events + b"data: [DONE]\n\n"


def result_from_completion(obj: Any, latency_ms: float) -> Answer:
    """A Answer from a teacher's ChatCompletion (for the background teacher call)."""
    answer = teacher_from_completion(obj)
    return Answer(
        model=answer["model"] or "unknown",
        provider="openai",
        text=answer["response"],
        latency_ms=latency_ms,
        prompt_tokens=answer["prompt_tokens"],
        completion_tokens=answer["completion_tokens"],
        usage_estimated=answer["prompt_tokens"] is None,
    )


# --- reading a teacher's response -----------------------------------------------------------------


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
                events.append(fastjson.loads(data))
    return events


def teacher_from_raw(raw: bytes, sse: bool) -> dict[str, Any]:
    """Answer fields from a teacher's raw response bytes (the proxy's): JSON, or SSE."""
    if sse:
        return teacher_from_chunks(parse_sse(raw), done=sse_done(raw))
    return teacher_from_completion(fastjson.loads(raw))

"""The OpenAI chat shapes, in one place: reading a request, shaping and reading a response.

* :class:`ChatRequest` is the one parser of an OpenAI chat request (the wrapper's ``create``
  arguments and the proxy's JSON body alike): messages, model, ``max_completion_tokens`` (or
  the older ``max_tokens``), temperature, ``stream``, ``stream_options.include_usage``, the
  end user (``user``, or its successor ``safety_identifier``), the request's kind
  (:func:`request_kind`) and what the student must get besides the messages (:data:`FEATURES`:
  tools, tool choice, response format).
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
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from shadowtutor import fastjson
from shadowtutor.backends import Answer

# --- requests -------------------------------------------------------------------------------

# The request's keys the student gets as they are (translated for its API by its backend).
FEATURES = ("tools", "tool_choice", "parallel_tool_calls", "functions", "response_format")
KINDS = ("plain", "tools", "json_object", "json_schema", "images")


def request_kind(body: Mapping[str, Any]) -> str:
    """The request's kind (:data:`KINDS`), from its keys alone: tools (or the older
    ``functions``) win over a response format, which wins over image parts; anything else is
    ``plain``. Pure and cheap: it runs on the request path for every request."""
    if body.get("tools") or body.get("functions"):
        return "tools"
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping):
        kind = response_format.get("type")
        if kind in ("json_object", "json_schema"):
            return str(kind)
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, Mapping) else None
            if isinstance(content, list) and any(
                isinstance(part, Mapping) and part.get("type") in ("image_url", "input_image")
                for part in content
            ):
                return "images"
    return "plain"


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
    kind: str = "plain"
    features: dict[str, Any] = field(default_factory=dict)  # FEATURES the request carries
    # The API the request was made in (the record's ``protocol``): ``openai.chat``, or a
    # request of another API read into this form (``collect.anthropic_shape``,
    # ``collect.responses_shape``): ``messages`` and ``features`` in OpenAI's chat shapes,
    # ``body`` as the caller sent it.
    protocol: str = "openai.chat"

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
            kind=request_kind(body),
            features={k: body[k] for k in FEATURES if body.get(k) is not None},
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
                "message": _message(result),
                "finish_reason": finish_reason(result),
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens or 0,
            "completion_tokens": result.completion_tokens or 0,
            "total_tokens": (result.prompt_tokens or 0) + (result.completion_tokens or 0),
        },
    }


def finish_reason(result: Answer) -> str:
    """The OpenAI finish reason of a student's answer: ``tool_calls`` when it called a tool
    (an Ollama server says ``stop`` then), else its own, else ``stop``."""
    if result.tool_calls and result.finish_reason in (None, "stop"):
        return "tool_calls"
    return result.finish_reason or "stop"


def _arguments(value: Any) -> str:
    """A call's arguments as OpenAI sends them: JSON text (an Ollama object serialised)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _tool_calls(result: Answer) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": c["name"], "arguments": _arguments(c.get("arguments", {}))},
        }
        for i, c in enumerate(result.tool_calls or [])
    ]


def _message(result: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.text}
    if result.tool_calls:
        message["content"] = result.text or None
        message["tool_calls"] = _tool_calls(result)
    return message


def chunk_dicts(
    result: Answer, *, include_usage: bool = False, id: str | None = None
) -> list[dict[str, Any]]:
    """The chat.completion.chunk objects (as dicts) of a student's answer, as a stream."""
    full = completion_dict(result, id=id)
    base = {k: full[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""}, None)]
    if result.text or not result.tool_calls:
        chunks.append(chunk({"content": result.text}, None))
    chunks += [
        chunk({"tool_calls": [call | {"index": i}]}, None)
        for i, call in enumerate(_tool_calls(result))
    ]
    chunks.append(chunk({}, full["choices"][0]["finish_reason"]))
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
        finish_reason=answer["finish_reason"],
        tool_calls=answer["tool_calls"],
        refusal=answer["refusal"],
    )


def answer_of(fields: Mapping[str, Any], latency_ms: float, provider: str) -> Answer:
    """An :class:`Answer` from a teacher's answer fields, as any protocol's reader gives
    them (a background teacher call of the Messages or Responses API)."""
    return Answer(
        model=fields.get("model") or "unknown",
        provider=provider,
        text=fields.get("response"),
        latency_ms=latency_ms,
        prompt_tokens=fields.get("prompt_tokens"),
        completion_tokens=fields.get("completion_tokens"),
        usage_estimated=fields.get("prompt_tokens") is None,
        finish_reason=fields.get("finish_reason"),
        tool_calls=fields.get("tool_calls"),
        refusal=fields.get("refusal"),
        cache_creation_tokens=fields.get("cache_creation_tokens"),
        cache_read_tokens=fields.get("cache_read_tokens"),
    )


# --- reading a teacher's response -----------------------------------------------------------------


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _call(name: Any, arguments: Any) -> dict[str, Any]:
    return {"name": name or "", "arguments": arguments if arguments is not None else ""}


def tool_calls_of(message: Any) -> list[dict[str, Any]] | None:
    """A message's tool calls as the record keeps them, ``[{name, arguments}]`` with the
    arguments exactly as sent (OpenAI's JSON text), the older ``function_call`` included;
    None when it has none."""
    calls = [
        _call(_get(fn, "name"), _get(fn, "arguments"))
        for fn in (_get(c, "function") for c in _get(message, "tool_calls") or [])
    ]
    legacy = _get(message, "function_call")
    if legacy is not None:
        calls.append(_call(_get(legacy, "name"), _get(legacy, "arguments")))
    return calls or None


def teacher_from_completion(obj: Any) -> dict[str, Any]:
    """Answer fields from a ChatCompletion (object or dict): the text ("" for an answer
    that is only tool calls: those are in ``tool_calls``), tool calls, refusal, finish
    reason and token counts."""
    choices = _get(obj, "choices") or []
    choice = choices[0] if choices else None
    message = _get(choice, "message")
    usage = _get(obj, "usage")
    return {
        "model": _get(obj, "model"),
        "response": _get(message, "content") or "",
        "prompt_tokens": _get(usage, "prompt_tokens"),
        "completion_tokens": _get(usage, "completion_tokens"),
        "tool_calls": tool_calls_of(message),
        "refusal": _get(message, "refusal"),
        "finish_reason": _get(choice, "finish_reason"),
    }


class _Calls:
    """Streamed tool-call deltas assembled: by ``index``, the name from the first delta that
    has one, the arguments' pieces joined in order."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.arguments: dict[int, list[str]] = {}

    def add(self, delta: Any) -> None:
        for n, call in enumerate(_get(delta, "tool_calls") or []):
            index = _get(call, "index", n)
            fn = _get(call, "function")
            if _get(fn, "name"):
                self.names.setdefault(index, _get(fn, "name"))
            self.arguments.setdefault(index, []).append(_get(fn, "arguments") or "")
        legacy = _get(delta, "function_call")
        if legacy is not None:
            if _get(legacy, "name"):
                self.names.setdefault(-1, _get(legacy, "name"))
            self.arguments.setdefault(-1, []).append(_get(legacy, "arguments") or "")

    def calls(self) -> list[dict[str, Any]] | None:
        order = sorted(set(self.names) | set(self.arguments), key=lambda i: (i < 0, i))
        found = [_call(self.names.get(i), "".join(self.arguments.get(i, []))) for i in order]
        return found or None


INCOMPLETE_STREAM = "incomplete: the teacher's stream ended without a finish reason or [DONE]"


def teacher_from_chunks(chunks: list[Any], *, done: bool = False) -> dict[str, Any]:
    """Answer fields from ChatCompletionChunks (objects or dicts) of one stream.

    A stream whose first choice never got a ``finish_reason`` (and, for raw SSE, that had no
    ``[DONE]``: ``done``) was cut: the answer keeps the text received but carries
    :data:`INCOMPLETE_STREAM` as its error, so it is never taken for a complete answer.
    """
    parts: list[str] = []
    refusal: list[str] = []
    calls = _Calls()
    model = None
    usage = None
    finish = None
    for chunk in chunks:
        model = model or _get(chunk, "model")
        usage = _get(chunk, "usage") or usage
        for choice in _get(chunk, "choices") or []:
            if _get(choice, "index", 0) == 0:
                delta = _get(choice, "delta")
                parts.append(_get(delta, "content") or "")
                refusal.append(_get(delta, "refusal") or "")
                calls.add(delta)
                finish = _get(choice, "finish_reason") or finish
    finished = done or bool(finish)
    answer = {
        "model": model,
        "response": "".join(parts),
        "prompt_tokens": _get(usage, "prompt_tokens"),
        "completion_tokens": _get(usage, "completion_tokens"),
        "tool_calls": calls.calls(),
        "refusal": "".join(refusal) or None,
        "finish_reason": finish,
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

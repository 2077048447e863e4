"""Anthropic's Messages API shapes, in one place (the record's protocol ``anthropic.messages``).

* :func:`parse_request` reads a Messages request (the proxy's JSON body, the wrapper's
  ``messages.create`` arguments) into a :class:`~shadowtutor.collect.openai_shape.ChatRequest`
  whose ``messages`` and ``features`` are in OpenAI's chat shapes, which is what the student's
  backends translate for their API (Ollama or OpenAI-compatible) and what the record keeps:
  ``system`` at the top level becomes the first message, ``tool_use`` blocks an assistant's
  ``tool_calls``, ``tool_result`` blocks ``tool`` messages, ``image`` blocks ``image_url``
  parts (base64 as a ``data:`` URL), ``tools`` functions with their ``input_schema`` as
  parameters, ``tool_choice`` its OpenAI equivalent. ``body`` stays as the caller sent it.
* :func:`teacher_from_message`, :func:`teacher_from_events` and :func:`teacher_from_raw` read a
  teacher's answer (a ``Message`` object or dict, the stream's events, or the proxy's raw
  bytes: JSON or SSE) as the record's answer fields; usage is read as the protocol states it:
  ``prompt_tokens`` is ``input_tokens`` plus the cache creation and cache read tokens, which
  are also kept apart (``cache_creation_tokens``, ``cache_read_tokens``) to be priced.
* :func:`message_dict`, :func:`event_dicts` and :func:`sse_body` shape a student's answer as
  the teacher's: a ``message`` object, its stream's events, or those as server-sent events.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from shadowtutor import fastjson
from shadowtutor.backends import Answer
from shadowtutor.collect.openai_shape import ChatRequest, request_kind
from shadowtutor.log.claude import chat_messages

PROTOCOL = "anthropic.messages"
# OpenAI finish reasons (a student's) as Anthropic stop reasons, and back
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


# --- requests -------------------------------------------------------------------------------


def chat_tools(tools: Any) -> list[dict[str, Any]] | None:
    """Anthropic tools as OpenAI functions (a server tool, without an ``input_schema``, is
    named with an open schema: the student cannot run it, but the call can be compared)."""
    if not isinstance(tools, list) or not tools:
        return None
    out = []
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        fn: dict[str, Any] = {
            "name": tool.get("name") or tool.get("type") or "",
            "parameters": tool.get("input_schema") or {"type": "object"},
        }
        if tool.get("description"):
            fn["description"] = tool["description"]
        out.append({"type": "function", "function": fn})
    return out or None


def chat_tool_choice(choice: Any) -> Any:
    if not isinstance(choice, Mapping):
        return None
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))


def parse_request(body: dict[str, Any]) -> ChatRequest:
    """A Messages request read as a :class:`ChatRequest` (see the module docstring); raises
    ValueError for a body that is not one (the teacher answers it unchanged)."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ValueError("'messages' is not a list")
    messages = chat_messages(body)
    features: dict[str, Any] = {}
    tools = chat_tools(body.get("tools"))
    if tools:
        features["tools"] = tools
        choice = chat_tool_choice(body.get("tool_choice"))
        if choice is not None:
            features["tool_choice"] = choice
    user = (body.get("metadata") or {}).get("user_id")
    return ChatRequest(
        body=body,
        messages=messages,
        model=body.get("model"),
        max_tokens=body.get("max_tokens"),
        temperature=body.get("temperature"),
        stream=bool(body.get("stream")),
        include_usage=True,
        user=user if isinstance(user, str) else None,
        kind=request_kind({"messages": messages, **features}),
        features=features,
        protocol=PROTOCOL,
    )


def teacher_body(request: ChatRequest) -> dict[str, Any]:
    """The request for a background (non-streamed) teacher call."""
    return {k: v for k, v in request.body.items() if k != "stream"}


# --- reading a teacher's answer ---------------------------------------------------------------


def _usage(usage: Any) -> dict[str, Any]:
    if usage is None:
        return {"prompt_tokens": None, "completion_tokens": None}
    written = _get(usage, "cache_creation_input_tokens")
    read = _get(usage, "cache_read_input_tokens")
    given = _get(usage, "input_tokens")
    prompt = None if given is None else given + (written or 0) + (read or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": _get(usage, "output_tokens"),
        "cache_creation_tokens": written,
        "cache_read_tokens": read,
    }


def _answer(
    model: Any, texts: list[str], calls: list[dict[str, Any]], stop: Any, usage: dict[str, Any]
) -> dict[str, Any]:
    text = "".join(texts)
    return {
        "model": model,
        "response": text,
        "tool_calls": calls or None,
        "refusal": text if stop == "refusal" else None,
        "finish_reason": stop,
        **usage,
    }


def teacher_from_message(obj: Any) -> dict[str, Any]:
    """Answer fields from a ``Message`` (object or dict): its text blocks joined, its
    ``tool_use`` blocks as calls (``{name, arguments}``, the input object as sent)."""
    texts, calls = [], []
    for block in _get(obj, "content") or []:
        kind = _get(block, "type")
        if kind == "text":
            texts.append(_get(block, "text") or "")
        elif kind in ("tool_use", "server_tool_use"):
            calls.append({"name": _get(block, "name") or "", "arguments": _plain(block)})
    return _answer(
        _get(obj, "model"), texts, calls, _get(obj, "stop_reason"), _usage(_get(obj, "usage"))
    )


def _plain(block: Any) -> Any:
    value = _get(block, "input")
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value if value is not None else {}


INCOMPLETE_STREAM = "incomplete: the teacher's stream ended without message_stop"


def teacher_from_events(events: list[Any], *, done: bool = False) -> dict[str, Any]:
    """Answer fields from the events of one stream (objects or dicts). A stream without a
    ``message_stop`` event was cut: the answer carries :data:`INCOMPLETE_STREAM`."""
    model = None
    usage: Any = {}
    texts: list[str] = []
    blocks: dict[int, dict[str, Any]] = {}
    stop = None
    for event in events:
        kind = _get(event, "type")
        if kind == "message_start":
            message = _get(event, "message")
            model = _get(message, "model")
            usage = _as_dict(_get(message, "usage"))
        elif kind == "content_block_start":
            block = _get(event, "content_block")
            index = _get(event, "index", len(blocks))
            if _get(block, "type") in ("tool_use", "server_tool_use"):
                blocks[index] = {"name": _get(block, "name") or "", "json": []}
            elif _get(block, "type") == "text" and _get(block, "text"):
                texts.append(_get(block, "text"))
        elif kind == "content_block_delta":
            delta = _get(event, "delta")
            if _get(delta, "type") == "text_delta":
                texts.append(_get(delta, "text") or "")
            elif _get(delta, "type") == "input_json_delta":
                found = blocks.get(_get(event, "index", -1))
                if found is not None:
                    found["json"].append(_get(delta, "partial_json") or "")
        elif kind == "message_delta":
            stop = _get(_get(event, "delta"), "stop_reason") or stop
            more = _as_dict(_get(event, "usage"))
            usage = usage | {k: v for k, v in more.items() if v is not None}
        elif kind == "message_stop":
            done = True
    calls = [
        {"name": b["name"], "arguments": _json_or_text("".join(b["json"]))}
        for _, b in sorted(blocks.items())
    ]
    answer = _answer(model, texts, calls, stop, _usage(usage or None))
    if not done:
        answer["error"] = INCOMPLETE_STREAM
    return answer


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if hasattr(value, "model_dump"):
        dumped: dict[str, Any] = value.model_dump()
        return dumped
    return dict(value)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return text


def parse_sse(raw: bytes) -> list[dict[str, Any]]:
    """The JSON ``data:`` events of a server-sent-events body (each names its ``type``)."""
    events = []
    for line in raw.splitlines():
        if line.startswith(b"data:"):
            data = line[5:].strip()
            if data:
                events.append(fastjson.loads(data))
    return events


def teacher_from_raw(raw: bytes, sse: bool) -> dict[str, Any]:
    """Answer fields from the proxy's raw bytes of the teacher's answer: JSON, or SSE."""
    if sse:
        return teacher_from_events(parse_sse(raw))
    return teacher_from_message(fastjson.loads(raw))


def stream_ended(data: bytes) -> bool:
    """Whether a piece of the teacher's SSE stream carries its last event."""
    return b"message_stop" in data


# --- shaping a student's answer as the teacher's ------------------------------------------------


def _input_of(arguments: Any) -> Any:
    if isinstance(arguments, str):
        parsed = _json_or_text(arguments)
        return parsed if isinstance(parsed, dict) else {"value": parsed}
    return arguments if isinstance(arguments, dict) else {}


def content_blocks(result: Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if result.text or not result.tool_calls:
        blocks.append({"type": "text", "text": result.text or ""})
    for i, call in enumerate(result.tool_calls or []):
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_st_{uuid.uuid4().hex[:16]}{i}",
                "name": call.get("name") or "",
                "input": _input_of(call.get("arguments")),
            }
        )
    return blocks


def stop_reason(result: Answer) -> str:
    if result.tool_calls:
        return "tool_use"
    return STOP_REASONS.get(result.finish_reason or "stop", "end_turn")


def message_dict(result: Answer, *, id: str | None = None) -> dict[str, Any]:
    """An Anthropic ``message`` (as a dict) carrying a student's answer."""
    return {
        "id": id or f"msg_st_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": result.model,
        "content": content_blocks(result),
        "stop_reason": stop_reason(result),
        "stop_sequence": None,
        "usage": {
            "input_tokens": result.prompt_tokens or 0,
            "output_tokens": result.completion_tokens or 0,
        },
    }


def event_dicts(result: Answer) -> list[dict[str, Any]]:
    """The stream events (as dicts) of a student's answer, in the order the API sends them."""
    full = message_dict(result)
    start = full | {"content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": full["usage"]["input_tokens"], "output_tokens": 0}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(full["content"]):
        if block["type"] == "text":
            opened = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            opened = block | {"input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events += [
            {"type": "content_block_start", "index": index, "content_block": opened},
            {"type": "content_block_delta", "index": index, "delta": delta},
            {"type": "content_block_stop", "index": index},
        ]
    events += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": full["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": full["usage"]["output_tokens"]},
        },
        {"type": "message_stop"},
    ]
    return events


def sse_body(result: Answer) -> bytes:
    """A student's answer as the server-sent events of a streamed message."""
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode() + b"\n\n"
        for e in event_dicts(result)
    )


def error_body(kind: str, message: str) -> dict[str, Any]:
    """An Anthropic error object (``overloaded_error``, ``api_error``...)."""
    return {"type": "error", "error": {"type": kind, "message": message}}

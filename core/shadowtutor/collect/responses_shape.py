"""OpenAI's Responses API shapes, in one place (the record's protocol ``openai.responses``).

* :func:`parse_request` reads a Responses request (the proxy's JSON body, the wrapper's
  ``responses.create`` arguments) into a
  :class:`~shadowtutor.collect.openai_shape.ChatRequest` whose ``messages`` and ``features``
  are in OpenAI's chat shapes (what the student's backends translate and the record keeps):
  ``instructions`` becomes the first (system) message, ``input`` a string or a list of items
  (messages with ``input_text`` / ``input_image`` / ``output_text`` parts, ``function_call``
  and ``function_call_output`` items), ``tools`` functions, ``text.format`` a
  ``response_format``. A request that continues a stored response (``previous_response_id``)
  has only part of its context here: the teacher holds the rest, so the pair is recorded with
  :data:`CONTEXT_HELD` and the student is neither asked nor let serve it.
* :func:`teacher_from_response`, :func:`teacher_from_events` and :func:`teacher_from_raw`
  read a teacher's answer (a ``Response`` object or dict, the stream's events, raw bytes) as
  the record's answer fields (cached input tokens kept apart to be priced).
* :func:`response_dict`, :func:`event_dicts` and :func:`sse_body` shape a student's answer as
  a ``Response``, its stream's events, or those as server-sent events.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from shadowtutor import fastjson
from shadowtutor.backends import Answer
from shadowtutor.collect.openai_shape import ChatRequest, request_kind

PROTOCOL = "openai.responses"
CONTEXT_HELD = "held by the teacher"  # metadata.context of a previous_response_id request


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


# --- requests -------------------------------------------------------------------------------


def _part(part: Any) -> dict[str, Any] | None:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, Mapping):
        return None
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if url:
            return {"type": "image_url", "image_url": {"url": url}}
    if kind == "input_file":
        return {"type": "text", "text": f"[file: {part.get('filename') or part.get('file_id')}]"}
    return None


def _content(content: Any) -> Any:
    if not isinstance(content, list):
        return content
    parts = [p for p in (_part(c) for c in content) if p is not None]
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def chat_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's ``instructions`` and ``input`` as OpenAI chat messages."""
    out: list[dict[str, Any]] = []
    if body.get("instructions"):
        out.append({"role": "system", "content": str(body["instructions"])})
    given = body.get("input")
    if isinstance(given, str):
        return [*out, {"role": "user", "content": given}]
    if not isinstance(given, list):
        raise ValueError("'input' is neither text nor a list of items")
    for item in given:
        if not isinstance(item, Mapping):
            raise ValueError("an input item is not an object")
        kind = item.get("type", "message")
        if kind == "message" or (kind is None and "role" in item):
            role = item.get("role") or "user"
            out.append({"role": role, "content": _content(item.get("content"))})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id") or item.get("id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""},
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
                last["tool_calls"].append(call)  # parallel calls: one assistant message
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else json.dumps(output)
            out.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
    return out


def chat_tools(tools: Any) -> list[dict[str, Any]] | None:
    """Responses tools as OpenAI chat functions (a built-in tool, such as ``web_search``,
    named by its type with an open schema: the student cannot run it)."""
    if not isinstance(tools, list) or not tools:
        return None
    out = []
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        fn: dict[str, Any] = {
            "name": tool.get("name") or tool.get("type") or "",
            "parameters": tool.get("parameters") or {"type": "object"},
        }
        if tool.get("description"):
            fn["description"] = tool["description"]
        out.append({"type": "function", "function": fn})
    return out or None


def response_format(text: Any) -> dict[str, Any] | None:
    """``text.format`` as a chat ``response_format``."""
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if not isinstance(fmt, Mapping):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        inner = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": inner}
    return None


def parse_request(body: dict[str, Any]) -> ChatRequest:
    """A Responses request read as a :class:`ChatRequest` (module docstring); ValueError
    for a body that is not one (the teacher answers it unchanged)."""
    if not isinstance(body, dict) or "input" not in body:
        raise ValueError("no 'input'")
    messages = chat_messages(body)
    features: dict[str, Any] = {}
    tools = chat_tools(body.get("tools"))
    if tools:
        features["tools"] = tools
        choice = body.get("tool_choice")
        if isinstance(choice, Mapping) and choice.get("type") == "function":
            features["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        elif choice in ("auto", "required", "none"):
            features["tool_choice"] = choice
    fmt = response_format(body.get("text"))
    if fmt is not None:
        features["response_format"] = fmt
    user = body.get("user") or body.get("safety_identifier")
    return ChatRequest(
        body=body,
        messages=messages,
        model=body.get("model"),
        max_tokens=body.get("max_output_tokens"),
        temperature=body.get("temperature"),
        stream=bool(body.get("stream")),
        include_usage=True,
        user=user if isinstance(user, str) else None,
        kind=request_kind({"messages": messages, **features}),
        features=features,
        protocol=PROTOCOL,
    )


def context_held(body: Mapping[str, Any]) -> bool:
    """The request continues a response stored by the teacher (its context is there)."""
    return bool(body.get("previous_response_id") or body.get("conversation"))


def teacher_body(request: ChatRequest) -> dict[str, Any]:
    return {k: v for k, v in request.body.items() if k not in ("stream", "stream_options")}


# --- reading a teacher's answer ---------------------------------------------------------------


def _dump(value: Any) -> Any:
    return value.model_dump() if hasattr(value, "model_dump") else value


def teacher_from_response(obj: Any) -> dict[str, Any]:
    """Answer fields from a ``Response`` (object or dict): its output text, its function
    calls (arguments as sent, JSON text), a refusal, its status, its usage."""
    texts, refusals, calls = [], [], []
    for item in _get(obj, "output") or []:
        kind = _get(item, "type")
        if kind == "message":
            for part in _get(item, "content") or []:
                if _get(part, "type") == "output_text":
                    texts.append(_get(part, "text") or "")
                elif _get(part, "type") == "refusal":
                    refusals.append(_get(part, "refusal") or "")
        elif kind == "function_call":
            calls.append({"name": _get(item, "name") or "", "arguments": _get(item, "arguments")})
    usage = _get(obj, "usage")
    details = _get(usage, "input_tokens_details")
    cached = _get(details, "cached_tokens")
    written = _get(details, "cache_write_tokens")
    status = _get(obj, "status")
    reason = _get(_get(obj, "incomplete_details"), "reason")
    return {
        "model": _get(obj, "model"),
        "response": "".join(texts),
        "prompt_tokens": _get(usage, "input_tokens"),
        "completion_tokens": _get(usage, "output_tokens"),
        "cache_creation_tokens": written or None,
        "cache_read_tokens": cached or None,
        "tool_calls": calls or None,
        "refusal": "".join(refusals) or None,
        "finish_reason": f"{status}: {reason}" if reason else status,
    }


INCOMPLETE_STREAM = "incomplete: the teacher's stream ended without response.completed"
_ENDS = ("response.completed", "response.incomplete", "response.failed")


def teacher_from_events(events: list[Any], *, done: bool = False) -> dict[str, Any]:
    """Answer fields from one stream's events (objects or dicts): the final response of its
    last event (``response.completed``, ``.incomplete`` or ``.failed``); a stream cut before
    it keeps the text received and carries :data:`INCOMPLETE_STREAM`."""
    texts: list[str] = []
    model = None
    for event in events:
        kind = _get(event, "type")
        if kind in _ENDS:
            answer = teacher_from_response(_dump(_get(event, "response")))
            if kind == "response.failed":
                error = _get(_get(_get(event, "response"), "error"), "message")
                answer["error"] = f"the teacher's response failed: {error}"
            return answer
        if kind == "response.created":
            model = _get(_get(event, "response"), "model")
        elif kind == "response.output_text.delta":
            texts.append(_get(event, "delta") or "")
    return {
        "model": model,
        "response": "".join(texts),
        "prompt_tokens": None,
        "completion_tokens": None,
        "tool_calls": None,
        "refusal": None,
        "finish_reason": None,
        "error": INCOMPLETE_STREAM,
    }


def parse_sse(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for line in raw.splitlines():
        if line.startswith(b"data:"):
            data = line[5:].strip()
            if data and data != b"[DONE]":
                events.append(fastjson.loads(data))
    return events


def teacher_from_raw(raw: bytes, sse: bool) -> dict[str, Any]:
    if sse:
        return teacher_from_events(parse_sse(raw))
    return teacher_from_response(fastjson.loads(raw))


def stream_ended(data: bytes) -> bool:
    return any(end.encode() in data for end in _ENDS)


# --- shaping a student's answer as the teacher's ------------------------------------------------


def _arguments(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments or {})


def output_items(result: Answer) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if result.text or not result.tool_calls:
        items.append(
            {
                "type": "message",
                "id": f"msg_st_{uuid.uuid4().hex[:24]}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": result.text or "", "annotations": []}],
            }
        )
    for call in result.tool_calls or []:
        items.append(
            {
                "type": "function_call",
                "id": f"fc_st_{uuid.uuid4().hex[:24]}",
                "call_id": f"call_st_{uuid.uuid4().hex[:16]}",
                "name": call.get("name") or "",
                "arguments": _arguments(call.get("arguments")),
                "status": "completed",
            }
        )
    return items


def response_dict(
    result: Answer, request: Mapping[str, Any] | None = None, *, id: str | None = None
) -> dict[str, Any]:
    """A ``Response`` (as a dict) carrying a student's answer to ``request`` (its body)."""
    body = request or {}
    prompt, completion = result.prompt_tokens or 0, result.completion_tokens or 0
    length = result.finish_reason == "length"
    return {
        "id": id or f"resp_st_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if length else "completed",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if length else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": result.model,
        "output": output_items(result),
        "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
        "previous_response_id": None,
        "temperature": body.get("temperature"),
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
        "metadata": body.get("metadata") or {},
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        },
    }


def event_dicts(result: Answer, request: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The stream events (as dicts) of a student's answer, as the API sends them."""
    full = response_dict(result, request)
    start = full | {"status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
    ]
    for n, item in enumerate(full["output"]):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            opened = item | {"status": "in_progress", "content": []}
            part = {"type": "output_text", "text": "", "annotations": []}
            where = {"item_id": item["id"], "output_index": n, "content_index": 0}
            events += [
                {"type": "response.output_item.added", "output_index": n, "item": opened},
                {"type": "response.content_part.added", **where, "part": part},
                {"type": "response.output_text.delta", **where, "delta": text, "logprobs": []},
                {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
                {"type": "response.content_part.done", **where, "part": item["content"][0]},
            ]
        else:
            opened = item | {"status": "in_progress", "arguments": ""}
            where = {"item_id": item["id"], "output_index": n}
            events += [
                {"type": "response.output_item.added", "output_index": n, "item": opened},
                {
                    "type": "response.function_call_arguments.delta",
                    **where,
                    "delta": item["arguments"],
                },
                {
                    "type": "response.function_call_arguments.done",
                    **where,
                    "name": item["name"],
                    "arguments": item["arguments"],
                },
            ]
        events.append({"type": "response.output_item.done", "output_index": n, "item": item})
    end = "response.incomplete" if full["status"] == "incomplete" else "response.completed"
    events.append({"type": end, "response": full})
    return [e | {"sequence_number": i} for i, e in enumerate(events)]


def sse_body(result: Answer, request: Mapping[str, Any] | None = None) -> bytes:
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode() + b"\n\n"
        for e in event_dicts(result, request)
    )

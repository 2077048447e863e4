"""OpenAI's Responses protocol of the loopback model servers
(:mod:`shadowtutor.testing.modelserver`), as the teacher speaks it.

``POST /v1/responses``: ``input`` a string or a list of items (messages with ``input_text``
parts, ``function_call`` / ``function_call_output`` items), ``instructions``, ``tools``
(function tools: answered with ``function_call`` output items, ``tool_answer``), ``text.format``
(JSON text filled from the schema), ``stream: true`` (the events ``response.created``,
``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``, ``response.output_text.done``, ``response.content_part.done``,
``response.function_call_arguments.delta`` / ``.done``, ``response.output_item.done``,
``response.completed``). ``usage`` names ``cached_tokens`` from the ``cache_usage`` switch
(its second number). A model the server does not have gets OpenAI's 404.
"""

from __future__ import annotations

import json
import time
from typing import Any

from shadowtutor.testing import structured
from shadowtutor.testing.httpserver import Exchange, Route, words


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") in ("input_text", "output_text", "text")
        )
    return str(content or "")


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    given = body.get("input")
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    return [
        {"role": item.get("role"), "content": _text(item.get("content"))}
        for item in given or []
        if isinstance(item, dict) and item.get("role")
    ]


def responses(ex: Exchange, body: dict[str, Any]) -> None:
    srv = ex.server_ref
    model = body.get("model", "")
    if model not in srv.models:
        err = {
            "message": f"The model `{model}` does not exist or you do not have access.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
        ex.send(404, {"error": err})
        return
    if not isinstance(body.get("input"), str | list):
        err = {"message": "Missing required parameter: 'input'.", "type": "invalid_request_error"}
        ex.send(400, {"error": err | {"param": "input", "code": "missing_required_parameter"}})
        return
    messages = _messages(body)
    tools = [
        {"type": "function", "function": {"name": t.get("name"), "parameters": t.get("parameters")}}
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") == "function"
    ]
    calls = srv.tool_answer(tools, messages) if tools else []
    fmt = (body.get("text") or {}).get("format") or {}
    if calls:
        text = ""
    elif fmt.get("type") == "json_schema":
        text = structured.json_text(fmt.get("schema") or {}, messages)
    else:
        text = srv.text_for(messages, model)
    n = srv.count()
    output: list[dict[str, Any]] = []
    if text:
        part = {"type": "output_text", "text": text, "annotations": []}
        output.append(
            {
                "type": "message",
                "id": f"msg_{n}",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    for i, c in enumerate(calls):
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{n}_{i}",
                "call_id": f"call_{i}",
                "name": c["name"],
                "arguments": json.dumps(c["arguments"]),
                "status": "completed",
            }
        )
    prompt = sum(len(m["content"].split()) for m in messages) + 3
    completion = len(text.split()) + 5 * len(calls)
    cached = (srv.cache_usage or (0, 0))[1]
    response = {
        "id": f"resp_{n}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        },
    }
    if not body.get("stream"):
        ex.send(200, response)
        return
    _stream(ex, response)


def _stream(ex: Exchange, response: dict[str, Any]) -> None:
    srv = ex.server_ref
    start = response | {"status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
    ]
    for n, item in enumerate(response["output"]):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            where = {"item_id": item["id"], "output_index": n, "content_index": 0}
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": n,
                    "item": item | {"status": "in_progress", "content": []},
                }
            )
            events.append(
                {
                    "type": "response.content_part.added",
                    **where,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                }
            )
            events += [
                {"type": "response.output_text.delta", **where, "delta": w, "logprobs": []}
                for w in words(text)
            ]
            events.append(
                {"type": "response.output_text.done", **where, "text": text, "logprobs": []}
            )
            events.append(
                {"type": "response.content_part.done", **where, "part": item["content"][0]}
            )
        else:
            where = {"item_id": item["id"], "output_index": n}
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": n,
                    "item": item | {"status": "in_progress", "arguments": ""},
                }
            )
            events.append(
                {
                    "type": "response.function_call_arguments.delta",
                    **where,
                    "delta": item["arguments"],
                }
            )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    **where,
                    "name": item["name"],
                    "arguments": item["arguments"],
                }
            )
        events.append({"type": "response.output_item.done", "output_index": n, "item": item})
    events.append({"type": "response.completed", "response": response})
    ex.start_chunked("text/event-stream")
    for i, event in enumerate(events):
        if srv.cut_after is not None and i >= srv.cut_after:
            ex.cut()
            return
        payload = event | {"sequence_number": i}
        ex.chunk(
            b"event: "
            + event["type"].encode()
            + b"\ndata: "
            + json.dumps(payload).encode()
            + b"\n\n"
        )
    ex.end_chunked()


ROUTES: dict[tuple[str, str], Route] = {("POST", "/v1/responses"): responses}

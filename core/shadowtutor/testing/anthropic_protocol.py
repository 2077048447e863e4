"""Anthropic's Messages protocol of the loopback model servers
(:mod:`shadowtutor.testing.modelserver`), as a Claude teacher speaks it.

``POST /v1/messages``: a ``message`` object, or with ``stream: true`` its server-sent events
(``message_start``, ``content_block_start``, ``ping``, ``content_block_delta`` with
``text_delta`` / ``input_json_delta``, ``content_block_stop``, ``message_delta``,
``message_stop``). The answer is the server's (``answer``, default the echo of the last user
text); a request with ``tools`` is answered with ``tool_use`` blocks (``tool_answer``, given
the tools as OpenAI functions). Usage carries ``cache_creation_input_tokens`` and
``cache_read_input_tokens`` from the server's ``cache_usage`` switch (``(written, read)``).
The request must carry ``x-api-key`` (or ``authorization``) and ``anthropic-version``, else
Anthropic's 401 / 400; a model the server does not have gets its 404 ``not_found_error``; the
``status`` switch answers Anthropic's error object (529 ``overloaded_error``, 500
``api_error``...).
"""

from __future__ import annotations

import json
from typing import Any

from shadowtutor.testing.httpserver import Exchange, Route, words

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error(ex: Exchange, status: int, message: str) -> None:
    kind = ERROR_TYPES.get(status, "api_error")
    ex.send(status, {"type": "error", "error": {"type": kind, "message": message}})


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return str(content or "")


def _chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The user turns' text, for the server's answer callable."""
    out = []
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            text = _text(m.get("content"))
            if m.get("role") == "assistant" or text:
                out.append({"role": m.get("role"), "content": text})
    return out


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.get("name"), "parameters": t.get("input_schema") or {}},
        }
        for t in body.get("tools") or []
        if isinstance(t, dict)
    ]


def messages(ex: Exchange, body: dict[str, Any]) -> None:
    srv = ex.server_ref
    headers = {k.lower() for k in ex.headers}
    if "x-api-key" not in headers and "authorization" not in headers:
        error(ex, 401, "x-api-key header is required")
        return
    if "anthropic-version" not in headers:
        error(ex, 400, "anthropic-version: header is required")
        return
    model = body.get("model", "")
    if model not in srv.models:
        error(ex, 404, f"model: {model}")
        return
    if not isinstance(body.get("messages"), list) or not body.get("max_tokens"):
        error(ex, 400, "messages: Field required" if "messages" not in body else "max_tokens")
        return
    chat = _chat_messages(body)
    calls = srv.tool_answer(_tools(body), chat) if body.get("tools") else []
    text = "" if calls else srv.text_for(chat, model)
    written, read = srv.cache_usage or (0, 0)
    input_tokens = sum(len(m["content"].split()) for m in chat) + 3
    usage = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": len(text.split()) + 5 * len(calls),
    }
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool_use", "id": f"toolu_{i}", "name": c["name"], "input": c["arguments"]}
        for i, c in enumerate(calls)
    ]
    stop = "tool_use" if calls else "end_turn"
    message = {
        "id": f"msg_{srv.count()}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    if not body.get("stream"):
        ex.send(200, message)
        return
    _stream(ex, message)


def _event(ex: Exchange, payload: dict[str, Any]) -> None:
    ex.chunk(
        b"event: " + payload["type"].encode() + b"\ndata: " + json.dumps(payload).encode() + b"\n\n"
    )


def _stream(ex: Exchange, message: dict[str, Any]) -> None:
    srv = ex.server_ref
    usage = message["usage"]
    start = message | {"content": [], "stop_reason": None, "usage": usage | {"output_tokens": 1}}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": block | {"text": ""},
                }
            )
            events += [
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": w},
                }
                for w in words(block["text"])
            ]
        else:
            opened = block | {"input": {}}
            events.append({"type": "content_block_start", "index": index, "content_block": opened})
            args = json.dumps(block["input"])
            third = max(1, -(-len(args) // 3))
            events += [
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": args[i : i + third]},
                }
                for i in range(0, len(args), third)
            ]
        events.append({"type": "content_block_stop", "index": index})
    events += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        },
        {"type": "message_stop"},
    ]
    ex.start_chunked("text/event-stream")
    for i, event in enumerate(events):
        if srv.cut_after is not None and i >= srv.cut_after:
            ex.cut()
            return
        _event(ex, event)
    ex.end_chunked()


ROUTES: dict[tuple[str, str], Route] = {("POST", "/v1/messages"): messages}

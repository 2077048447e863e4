"""The OpenAI protocol of the loopback model servers (:mod:`shadowtutor.testing.modelserver`), as
the teacher or an OpenAI-compatible student (vLLM, llama.cpp) speaks it.

``POST /v1/chat/completions`` (plain JSON, or server-sent events with ``stream: true``; the
``usage`` block is sent in the answer, and as a last chunk when
``stream_options.include_usage`` is true; tool calls streamed as tool-call deltas),
``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/embeddings``, ``POST /v1/completions``
(the legacy text completions, plain or streamed). A model the server does not have gets OpenAI's 404
``model_not_found``, ``messages`` that is not an array of objects OpenAI's 400.
"""

from __future__ import annotations

import json
import time
from typing import Any

from shadowtutor.testing import structured
from shadowtutor.testing.httpserver import Exchange, Route, embed_text, words


def _missing(ex: Exchange, model: str) -> bool:
    if model in ex.server_ref.models:
        return False
    ex.send(
        404,
        {
            "error": {
                "message": f"The model `{model}` does not exist or you do not have access.",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        },
    )
    return True


def _invalid_messages(ex: Exchange, messages: Any) -> bool:
    """OpenAI's 400 for ``messages`` that is not an array of objects (its wording)."""
    names = {str: "a string", dict: "an object", int: "an integer", float: "a number"}
    names |= {bool: "a boolean", type(None): "null", list: "an array"}
    where, bad = "messages", None
    if not isinstance(messages, list):
        bad = messages
    else:
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                where, bad = f"messages[{i}]", m
                break
    if where == "messages" and isinstance(messages, list):
        return False
    got = names.get(type(bad), "a value")
    want = "an array" if where == "messages" else "an object"
    ex.send(
        400,
        {
            "error": {
                "message": f"Invalid type for '{where}': expected {want}, but got {got} instead.",
                "type": "invalid_request_error",
                "param": where,
                "code": "invalid_type",
            }
        },
    )
    return True


def chat(ex: Exchange, body: dict[str, Any]) -> None:
    srv = ex.server_ref
    model = body.get("model", "")
    if _missing(ex, model):
        return
    if _invalid_messages(ex, body.get("messages", [])):
        return
    refused = structured.refusal(body, srv.refuse, model, ollama=False)
    if refused:
        err = {"message": refused, "type": "invalid_request_error", "code": None}
        ex.send(400, {"error": err})
        return
    messages = body.get("messages") or []
    text, calls = srv.reply_for(body, body.get("response_format"))
    finish = "tool_calls" if calls else "stop"
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages) + 3
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(text.split()),
        "total_tokens": prompt_tokens + len(text.split()),
    }
    base = {"id": f"chatcmpl-{srv.count()}", "created": int(time.time()), "model": model}
    if not body.get("stream"):
        payload = {
            **base,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text or None}
                    | ({"tool_calls": structured.openai_tool_calls(calls)} if calls else {}),
                    "finish_reason": finish,
                }
            ],
        }
        if srv.usage:
            payload["usage"] = usage
        if srv.cut_after is not None:
            ex.send_cut(payload)
        else:
            ex.send(200, payload)
        return
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    ex.start_chunked("text/event-stream")
    pieces: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    pieces += [{"content": w} for w in words(text)]
    if calls:
        pieces = [{"role": "assistant", "content": None}, *structured.openai_tool_deltas(calls)]
    for i, delta in enumerate(pieces):
        if srv.cut_after is not None and i >= srv.cut_after:
            ex.cut()
            return
        if srv.stop_after is not None and i >= srv.stop_after:
            ex.end_chunked()
            return
        chunk = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        ex.chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    final = {
        **base,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
    }
    ex.chunk(b"data: " + json.dumps(final).encode() + b"\n\n")
    if include_usage and srv.usage:
        tail = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        ex.chunk(b"data: " + json.dumps(tail).encode() + b"\n\n")
    ex.chunk(b"data: [DONE]\n\n")
    ex.end_chunked()


def models(ex: Exchange, _body: Any) -> None:
    data = [
        {"id": m, "object": "model", "created": 0, "owned_by": "loopback"}
        for m in ex.server_ref.models
    ]
    ex.send(200, {"object": "list", "data": data})


def embeddings(ex: Exchange, body: dict[str, Any]) -> None:
    model = body.get("model", "")
    if _missing(ex, model):
        return
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
    data = [
        {"object": "embedding", "index": i, "embedding": embed_text(t)}
        for i, t in enumerate(inputs)
    ]
    tokens = sum(len(t.split()) for t in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    ex.send(200, {"object": "list", "data": data, "model": model, "usage": usage})


def model(ex: Exchange, _body: Any) -> None:
    name = ex.path.split("?", 1)[0].rsplit("/", 1)[-1]
    if _missing(ex, name):
        return
    ex.send(200, {"id": name, "object": "model", "created": 0, "owned_by": "loopback"})


def completions(ex: Exchange, body: dict[str, Any]) -> None:
    """The legacy ``/v1/completions``: the prompt echoed (``echo: <prompt>``)."""
    srv = ex.server_ref
    name = body.get("model", "")
    if _missing(ex, name):
        return
    prompt = body.get("prompt")
    text = srv.text_for([{"role": "user", "content": str(prompt)}], name)
    base = {"id": f"cmpl-{srv.count()}", "created": int(time.time()), "model": name}
    tokens = len(str(prompt).split())
    usage = {
        "prompt_tokens": tokens,
        "completion_tokens": len(text.split()),
        "total_tokens": tokens + len(text.split()),
    }
    if not body.get("stream"):
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        ex.send(200, {**base, "object": "text_completion", "choices": [choice], "usage": usage})
        return
    ex.start_chunked("text/event-stream")
    for piece in words(text):
        choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": None}
        chunk = {**base, "object": "text_completion", "choices": [choice]}
        ex.chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    last = {"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}
    chunk = {**base, "object": "text_completion", "choices": [last]}
    ex.chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    ex.chunk(b"data: [DONE]\n\n")
    ex.end_chunked()


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/chat/completions"): chat,
    ("GET", "/v1/models"): models,
    ("GET", "/v1/models/{id}"): model,
    ("POST", "/v1/embeddings"): embeddings,
    ("POST", "/v1/completions"): completions,
}

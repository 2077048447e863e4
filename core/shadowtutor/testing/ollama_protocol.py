"""The Ollama protocol of the loopback model servers (:mod:`shadowtutor.testing.modelserver`), as
a student served by Ollama speaks it.

``POST /api/chat`` (NDJSON stream by default, one JSON object with ``"stream": false``; a
model's tool calls sent whole, in one part), ``GET /api/tags``, ``GET /api/ps``,
``POST /api/show``, ``GET /api/version``, ``POST /api/embed``. A model the server does not have
gets Ollama's 404 ``model "x" not found, try pulling it first``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from shadowtutor.testing import structured
from shadowtutor.testing.httpserver import Exchange, Route, embed_text, words


def _missing(ex: Exchange, model: str) -> bool:
    known = ex.server_ref.models
    if model in known or f"{model}:latest" in known or model.removesuffix(":latest") in known:
        return False
    ex.send(404, {"error": f'model "{model}" not found, try pulling it first'})
    return True


def chat(ex: Exchange, body: dict[str, Any]) -> None:
    srv = ex.server_ref
    model = body.get("model", "")
    if _missing(ex, model):
        return
    messages = body.get("messages") or []
    refused = structured.refusal(body, srv.refuse, model, ollama=True)
    if srv.strict_ollama:
        refused = refused or structured.ollama_rejection(messages)
    if refused:
        ex.send(400, {"error": refused})
        return
    text, calls = srv.reply_for(body, body.get("format"))
    tool_calls = [{"function": c} for c in calls]
    options = body.get("options") or {}
    if options.get("num_predict"):
        text = " ".join(text.split(" ")[: int(options["num_predict"])])
    counts = {}
    if srv.usage:
        prompt = sum(len(str(m.get("content", "")).split()) for m in messages) + 3
        counts = {"prompt_eval_count": prompt, "eval_count": len(text.split())}
    base = {"model": model, "created_at": "2026-11-01T00:00:00Z"}
    final = {
        **base,
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "total_duration": 1000,
        **counts,
    }
    if body.get("stream") is False:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        payload = {**final, "message": message | ({"tool_calls": tool_calls} if calls else {})}
        if srv.cut_after is not None:
            ex.send_cut(payload)
        else:
            ex.send(200, payload)
        return
    ex.start_chunked("application/x-ndjson")
    for i, piece in enumerate(words(text)):
        if srv.cut_after is not None and i >= srv.cut_after:
            ex.cut()
            return
        part = {**base, "message": {"role": "assistant", "content": piece}, "done": False}
        ex.chunk(json.dumps(part).encode() + b"\n")
    if calls:  # Ollama sends a model's tool calls whole, in one part
        part = {**base, "done": False}
        part["message"] = {"role": "assistant", "content": "", "tool_calls": tool_calls}
        ex.chunk(json.dumps(part).encode() + b"\n")
    ex.chunk(json.dumps(final).encode() + b"\n")
    ex.end_chunked()


def _details(model: str) -> dict[str, Any]:
    family = model.split(":")[0].rstrip("0123456789.") or model
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_0",
    }


def tags(ex: Exchange, _body: Any) -> None:
    models = [
        {
            "name": m,
            "model": m,
            "modified_at": "2026-11-01T00:00:00Z",
            "size": 4_661_224_676,
            "digest": hashlib.sha256(m.encode()).hexdigest(),
            "details": _details(m),
        }
        for m in ex.server_ref.models
    ]
    ex.send(200, {"models": models})


def ps(ex: Exchange, _body: Any) -> None:
    models = [
        {
            "name": m,
            "model": m,
            "size": 5_137_025_024,
            "digest": hashlib.sha256(m.encode()).hexdigest(),
            "details": _details(m),
            "expires_at": "2026-11-01T00:05:00Z",
            "size_vram": 5_137_025_024,
            "context_length": ex.server_ref.context_length,
        }
        for m in ex.server_ref.models[:1]
    ]
    ex.send(200, {"models": models})


def show(ex: Exchange, body: dict[str, Any]) -> None:
    model = body.get("model") or body.get("name") or ""
    if _missing(ex, model):
        return
    details = _details(model)
    ex.send(
        200,
        {
            "modelfile": f"FROM {model}",
            "parameters": "stop <|eot_id|>",
            "template": "{{ .Prompt }}",
            "details": details,
            "model_info": {
                "general.architecture": details["family"],
                "general.parameter_count": 8_030_261_248,
                f"{details['family']}.context_length": ex.server_ref.context_length,
            },
            "capabilities": ["completion"],
            "modified_at": "2026-11-01T00:00:00Z",
        },
    )


def version(ex: Exchange, _body: Any) -> None:
    ex.send(200, {"version": ex.server_ref.version})


def embed(ex: Exchange, body: dict[str, Any]) -> None:
    model = body.get("model", "")
    if _missing(ex, model):
        return
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
    ex.send(
        200,
        {"model": model, "embeddings": [embed_text(t) for t in inputs], "total_duration": 1},
    )


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/api/chat"): chat,
    ("GET", "/api/tags"): tags,
    ("GET", "/api/ps"): ps,
    ("POST", "/api/show"): show,
    ("GET", "/api/version"): version,
    ("POST", "/api/embed"): embed,
}

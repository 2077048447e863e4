"""What the loopback model servers (:mod:`shadowtutor.testing.modelserver`) answer to a request
with tools or a JSON format, in either protocol, and what a real Ollama refuses.

* :func:`default_tool_calls`: a call to the request's first tool, its arguments filled from
  the tool's parameter schema (strings from the last user message), so the same request
  gets the same call from every server (teacher and student agree unless a test says not).
* :func:`json_text`: a JSON answer for ``response_format`` (OpenAI) or ``format`` (Ollama):
  an object filled from the schema, or ``{"answer": ...}`` for plain JSON mode (where the
  configured answer holds a JSON object, that object: :func:`json_object_in`).
* :func:`openai_tool_deltas`: the streamed ``tool_calls`` deltas of OpenAI's chunks (the
  arguments cut in pieces, as a real server sends them).
* :func:`ollama_rejection`: the 400 a real Ollama answers to OpenAI-shaped messages (content
  as a list of parts, tool-call arguments as a JSON string), else None.
* :func:`refusal`: the 400 of a server that does not support tools or a JSON schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

ToolAnswer = Callable[[list[dict[str, Any]], list[dict[str, Any]]], list[dict[str, Any]]]


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                return " ".join(
                    str(p.get("text", "")) for p in content if isinstance(p, dict)
                ).strip()
            return str(content or "")
    return ""


def _value(schema: dict[str, Any], text: str) -> Any:
    kind = schema.get("type")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return [_value(schema.get("items") or {}, text)]
    if kind == "object":
        return filled(schema, text)
    return text


def filled(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """An object with every property of ``schema`` filled (strings with ``text``)."""
    props = schema.get("properties") or {}
    return {name: _value(sub if isinstance(sub, dict) else {}, text) for name, sub in props.items()}


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("function") or tool  # OpenAI {"type", "function"}; or a bare function


def default_tool_calls(
    tools: list[dict[str, Any]], messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One call to the first tool: ``[{"name", "arguments": {...}}]`` (arguments an object)."""
    if not tools:
        return []
    fn = _function(tools[0])
    arguments = filled(fn.get("parameters") or {}, last_user_text(messages))
    return [{"name": fn.get("name", ""), "arguments": arguments}]


def schema_of(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema of an OpenAI ``response_format`` or an Ollama ``format``; ``{}`` for
    plain JSON mode, None when the request asks for no JSON."""
    if response_format == "json":
        return {}
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind == "json_object":
            return {}
        if kind == "json_schema":
            return dict((response_format.get("json_schema") or {}).get("schema") or {})
        if kind == "object" or "properties" in response_format:  # Ollama: the schema itself
            return response_format
    return None


def json_object_in(text: str) -> str | None:
    """The first JSON object inside ``text`` (re-encoded), else None."""
    decoder = json.JSONDecoder()
    at = text.find("{")
    while at >= 0:
        try:
            value, _end = decoder.raw_decode(text, at)
        except ValueError:
            at = text.find("{", at + 1)
            continue
        if isinstance(value, dict):
            return json.dumps(value)
        at = text.find("{", at + 1)
    return None


def json_text(schema: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    """The JSON answer to a request with ``schema`` (``{}``: plain JSON mode)."""
    text = last_user_text(messages)
    value = filled(schema, text) if schema.get("properties") else {"answer": text}
    return json.dumps(value)


def openai_tool_deltas(calls: list[dict[str, Any]], pieces: int = 3) -> list[dict[str, Any]]:
    """The ``delta`` objects that stream ``calls`` (arguments cut into ``pieces`` parts)."""
    deltas: list[dict[str, Any]] = []
    for i, call in enumerate(calls):
        args = json.dumps(call["arguments"])
        size = max(1, -(-len(args) // pieces))
        head = {"index": i, "id": f"call_{i}", "type": "function"}
        deltas.append(
            {"tool_calls": [head | {"function": {"name": call["name"], "arguments": ""}}]}
        )
        for start in range(0, len(args), size):
            part = args[start : start + size]
            deltas.append({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
    return deltas


def openai_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``calls`` as an OpenAI message's ``tool_calls`` (arguments a JSON string)."""
    return [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
        }
        for i, c in enumerate(calls)
    ]


def ollama_rejection(messages: Any) -> str | None:
    """The error a real Ollama (Go's JSON decoder) gives for OpenAI-shaped messages."""
    for msg in messages if isinstance(messages, list) else []:
        if not isinstance(msg, dict):
            continue
        if isinstance(msg.get("content"), list):
            return (
                "json: cannot unmarshal array into Go struct field "
                "Message.messages.content of type string"
            )
        for call in msg.get("tool_calls") or []:
            if isinstance(((call or {}).get("function") or {}).get("arguments"), str):
                return (
                    "json: cannot unmarshal string into Go struct field "
                    "ToolCallFunction.messages.tool_calls.function.arguments of type "
                    "api.ToolCallFunctionArguments"
                )
    return None


def refusal(body: dict[str, Any], refuse: set[str], model: str, ollama: bool) -> str | None:
    """The error of a server that does not support a feature in ``refuse`` (``tools``,
    ``schema``) that ``body`` uses, worded as Ollama and llama.cpp word it; else None."""
    if "tools" in refuse and body.get("tools"):
        return f"{model} does not support tools" if ollama else "tools param requires --jinja flag"
    wants = body.get("format") if ollama else body.get("response_format")
    if "schema" in refuse and schema_of(wants) is not None:
        return (
            f"{model} does not support structured outputs"
            if ollama
            else ("response_format is not supported")
        )
    return None

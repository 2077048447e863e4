"""Claude-style conversations (Anthropic's Messages format) in the record's chat form.

The record keeps every prompt as OpenAI-style chat messages; a Messages conversation is read
into that form here, once, for the proxy and the wrapper
(:mod:`shadowtutor.collect.anthropic_shape`) and for imports and replays of conversation
files (:mod:`shadowtutor.log.ingest`):

* ``system`` at the top level (a string or text blocks) becomes the first message;
* a user turn's ``tool_result`` blocks become ``tool`` messages (``tool_call_id``, the result's
  text, prefixed ``error:`` when ``is_error``), its text and ``image`` blocks one user message
  (images as ``image_url`` parts: base64 as a ``data:`` URL); a ``document`` block is named;
* an assistant turn's text blocks its content, its ``tool_use`` blocks ``tool_calls`` (the
  input as JSON text); ``thinking`` blocks are left out.

:func:`is_claude` tells a Claude-style line from an OpenAI chat line (both have ``messages``);
:func:`answer_of` reads an assistant turn as the record's answer fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Content block types only the Messages format has.
CLAUDE_BLOCKS = {"tool_use", "tool_result", "document", "thinking", "redacted_thinking"}


def _text_of(content: Any) -> str:
    """The text of a ``system`` or ``tool_result`` content: a string, or text blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text") or "")
            for b in content
            if isinstance(b, Mapping) and b.get("type") == "text"
        )
    return "" if content is None else str(content)


def _image_part(block: Mapping[str, Any]) -> dict[str, Any] | None:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        media = source.get("media_type") or "image/png"
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{source['data']}"}}
    if source.get("type") == "url" and source.get("url"):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    return None


def _user_messages(content: Any) -> list[dict[str, Any]]:
    """One Anthropic user turn as OpenAI messages: its tool results first (one ``tool``
    message each), then the rest (text and images) as one user message."""
    if not isinstance(content, list):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "tool_result":
            text = _text_of(block.get("content"))
            if block.get("is_error"):
                text = f"error: {text}"
            out.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
        elif kind == "text":
            parts.append({"type": "text", "text": str(block.get("text") or "")})
        elif kind == "image":
            image = _image_part(block)
            if image is not None:
                parts.append(image)
        elif kind == "document":
            title = (block.get("title") or (block.get("source") or {}).get("type")) or "document"
            parts.append({"type": "text", "text": f"[document: {title}]"})
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        joined = "\n".join(p["text"] for p in parts) if only_text else parts
        out.append({"role": "user", "content": joined})
    return out


def _assistant_message(content: Any) -> dict[str, Any]:
    if not isinstance(content, list):
        return {"role": "assistant", "content": content}
    texts, calls = [], []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") in ("tool_use", "server_tool_use"):
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": json.dumps(block.get("input") or {}),
                    },
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return message


def chat_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's ``system`` and ``messages`` as OpenAI chat messages (module docstring)."""
    out: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        out.append({"role": "system", "content": _text_of(system)})
    for message in body["messages"]:
        if not isinstance(message, Mapping):
            raise ValueError("a message is not an object")
        if message.get("role") == "assistant":
            out.append(_assistant_message(message.get("content")))
        else:
            out.extend(_user_messages(message.get("content")))
    return out


def is_claude(obj: Mapping[str, Any]) -> bool:
    """Whether a conversation line is in the Messages format: a top-level ``system``, a
    Claude model, or a content block only that format has (an image with a ``source``)."""
    if "system" in obj or str(obj.get("model") or "").startswith("claude"):
        return True
    for message in obj.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, Mapping):
                continue
            kind = block.get("type")
            if kind in CLAUDE_BLOCKS or (kind == "image" and "source" in block):
                return True
    return False


def answer_of(message: Mapping[str, Any]) -> dict[str, Any]:
    """An assistant turn (Messages format) as the record's answer fields: its text and its
    ``tool_use`` blocks as calls (``{name, arguments}``, the input object as sent)."""
    content = message.get("content")
    if isinstance(content, str):
        return {"response": content}
    texts, calls = [], []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            calls.append({"name": str(block.get("name") or ""), "arguments": block.get("input")})
    return {"response": "".join(texts), "tool_calls": calls or None}

"""Real HTTP model servers on 127.0.0.1 for tests and benchmarks.

One :class:`ModelServer` speaks the protocols a ShadowTutor installation meets: **OpenAI**
chat (teacher, or an OpenAI-compatible student such as vLLM / llama.cpp;
:mod:`shadowtutor.testing.openai_protocol`), **OpenAI Responses**
(:mod:`shadowtutor.testing.responses_protocol`), **Anthropic Messages** (a Claude teacher;
:mod:`shadowtutor.testing.anthropic_protocol`) and **Ollama** (student;
:mod:`shadowtutor.testing.ollama_protocol`). It listens on a free port in a background thread
(:mod:`shadowtutor.testing.httpserver`: the fault switches, ``down()`` / ``up()``, what it
counts and keeps) and is driven by the real ``openai`` and ``ollama`` clients::

    with ModelServer(models=["gpt-4o-mini"], answer="Hello there") as teacher:
        client = openai.OpenAI(base_url=teacher.openai_url, api_key="k")
        ...
        assert teacher.count("/v1/chat/completions") == 1

Answers: ``answer`` is a fixed string, or a callable ``(messages, model) -> str``; the default
echoes the last user message (``"echo: <text>"``), so a test can tell prompts apart.

Tools and JSON (:mod:`shadowtutor.testing.structured`): a request with ``tools`` is answered
with a tool call (``tool_answer``, a callable ``(tools, messages) -> [{name, arguments}]``;
by default a call to the first tool), streamed as tool-call deltas; a request with a JSON
``response_format`` (OpenAI) or ``format`` (Ollama) gets JSON text filled from its schema.

A model not in ``models`` gets the protocol's "not found" answer.
"""

from __future__ import annotations

from typing import ClassVar

from shadowtutor.testing import (
    anthropic_protocol,
    ollama_protocol,
    openai_protocol,
    responses_protocol,
)
from shadowtutor.testing.httpserver import LoopbackServer, Route


class ModelServer(LoopbackServer):
    """An OpenAI + Ollama speaking HTTP server on 127.0.0.1 (see the module docstring)."""

    routes: ClassVar[dict[tuple[str, str], Route]] = (
        openai_protocol.ROUTES
        | ollama_protocol.ROUTES
        | anthropic_protocol.ROUTES
        | responses_protocol.ROUTES
    )

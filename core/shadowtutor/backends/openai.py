"""A model behind an OpenAI-compatible API: the teacher (OpenAI itself, or Claude behind an
OpenAI-compatible endpoint) or a student on vLLM, llama.cpp, RunPod.

Chat (plain and streaming, timed by :class:`shadowtutor.backends.base.Backend`; the
request's tools, tool choice and response format sent as they are, streamed tool-call deltas
assembled) through the lean HTTP client (:mod:`shadowtutor.backends.http`);
``list_models()`` and ``embed(texts)`` through the ``openai`` client with its own
``base_url`` and key.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import httpx
import openai
import pydantic

from shadowtutor import fastjson
from shadowtutor.backends.base import (
    Backend,
    BackendError,
    BackendHTTPError,
    BackendProtocolError,
    BackendTimeout,
    BackendUnavailable,
    Messages,
    ModelInfo,
    ModelNotFound,
    Piece,
)
from shadowtutor.backends.http import LeanClient, StatusError


def _call_parts(delta: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A stream delta's tool-call parts (:class:`Piece`'s form: index, name, argument text)."""
    calls = delta.get("tool_calls")
    if not calls:
        return None
    return [
        {
            "index": c.get("index", n),
            "name": (c.get("function") or {}).get("name"),
            "arguments": (c.get("function") or {}).get("arguments") or "",
        }
        for n, c in enumerate(calls)
        if isinstance(c, dict)
    ]


class OpenAIBackend(Backend):
    """A model behind an OpenAI-compatible API (OpenAI itself, vLLM, llama.cpp, RunPod)."""

    provider = "openai"

    def __init__(
        self,
        *,
        base_url: str = "",
        api_key: str = "",
        model: str = "gpt-4o-mini",
        timeout: float = 60.0,
        provider: str = "openai",
    ):
        super().__init__(
            base_url=base_url or "https://api.openai.com/v1", model=model, timeout=timeout
        )
        self.provider = provider
        # A local server often needs no key, but the client insists on one.
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or "none", timeout=timeout, max_retries=0
        )
        self._http = LeanClient(
            self.base_url,
            timeout,
            {"authorization": f"Bearer {api_key or 'none'}", "accept": "text/event-stream"},
        )

    def _missing_v1(self) -> bool:
        """The base URL's path does not end in /v1 (``http://host:8080`` for llama.cpp)."""
        from urllib.parse import urlsplit

        return not urlsplit(self.base_url).path.rstrip("/").endswith("/v1")

    def _error(self, exc: Exception, model: str | None = None) -> BackendError:
        where = f"the OpenAI-compatible server at {self.base_url}"
        if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
            return BackendTimeout(f"{where} did not answer in {self.timeout:g} s")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            if cause is not None and "connect" in type(cause).__name__.lower():
                return BackendUnavailable(
                    f"nothing is listening at {self.base_url}; start the server (vLLM: "
                    "`vllm serve MODEL`, llama.cpp: `llama-server -m FILE`) or fix the base URL"
                )
            return BackendProtocolError(f"the connection to {where} broke: {exc}")
        if isinstance(exc, openai.NotFoundError) and self._missing_v1():
            return BackendHTTPError(
                f"{where} answered HTTP 404: the base URL probably lacks `/v1` "
                f"(OpenAI-compatible servers such as llama.cpp and vLLM serve under it); "
                f"try {self.base_url.rstrip('/')}/v1",
                404,
            )
        if isinstance(exc, openai.NotFoundError) and model:
            return ModelNotFound(
                f"{where} has no model '{model}' (HTTP 404); check the model name "
                "(`GET /v1/models` lists what it serves)"
            )
        if isinstance(exc, openai.APIStatusError):
            return BackendHTTPError(
                f"{where} answered HTTP {exc.status_code}: {exc.message}", exc.status_code
            )
        if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError | openai.APIError):
            return BackendProtocolError(f"{where} sent an answer that is not valid JSON")
        if isinstance(exc, httpx.HTTPError):
            return BackendProtocolError(f"the connection to {where} broke mid-answer: {exc}")
        return BackendError(f"{where} failed: {exc!r}")

    def _pieces(
        self, name: str, messages: Messages, options: dict[str, Any]
    ) -> Generator[Piece, None, None]:
        # The SSE stream through the lean client (kept-alive http.client, one JSON parse per
        # event): the request the openai SDK sends, at a fraction of its CPU; its errors are
        # raised as the SDK's, so :meth:`_error` says the same.
        body = {
            "model": name,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            **options,
        }
        lines = self._http.stream_lines("/chat/completions", fastjson.dumps(body, default=str))
        try:
            for line in lines:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                chunk = fastjson.loads(data)
                if not isinstance(chunk, dict):
                    raise json.JSONDecodeError("not an object", data.decode("utf-8", "replace"), 0)
                if chunk.get("error"):
                    raise openai.APIError(
                        str((chunk["error"] or {}).get("message") or chunk["error"]),
                        # openai types its errors with its own httpx fork; only carried
                        httpx.Request("POST", self.base_url),  # type: ignore[arg-type]
                        body=chunk,
                    )
                usage = chunk.get("usage") or None
                choices = chunk.get("choices") or []
                choice = choices[0] if choices else None
                delta = (choice or {}).get("delta") or {}
                finish = (choice or {}).get("finish_reason")
                yield Piece(
                    text=delta.get("content") or "",
                    done=bool(finish),
                    finish_reason=finish,
                    prompt_tokens=usage.get("prompt_tokens") if usage else None,
                    completion_tokens=usage.get("completion_tokens") if usage else None,
                    tool_calls=_call_parts(delta),
                )
        except StatusError as exc:
            response = exc.response()  # openai types it with its own httpx fork: only carried
            raise self.client._make_status_error_from_response(response) from exc  # type: ignore[arg-type]
        except httpx.ConnectError as exc:
            raise openai.APIConnectionError(request=exc.request) from exc  # type: ignore[arg-type]
        finally:
            lines.close()

    def _incomplete(self) -> str:
        return f"{self.base_url} ended the stream without a finish reason"

    def list_models(self) -> list[ModelInfo]:
        try:
            return [
                ModelInfo(name=m.id, extra={"owned_by": m.owned_by})
                for m in self.client.models.list()
            ]
        except Exception as exc:
            raise self._error(exc) from exc

    def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        try:
            resp = self.client.embeddings.create(model=model, input=texts)
        except Exception as exc:
            raise self._error(exc, model) from exc
        return [list(d.embedding) for d in sorted(resp.data, key=lambda d: d.index)]

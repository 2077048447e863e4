"""A model behind an OpenAI-compatible API: the teacher (OpenAI itself, or Claude behind an
OpenAI-compatible endpoint) or a student on vLLM, llama.cpp, RunPod.

Chat (plain and streaming, timed by :class:`shadowtutor.backends.base.Backend`),
``list_models()`` and ``embed(texts)`` through the ``openai`` client with its own ``base_url``
and key.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import httpx
import openai
import pydantic

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
        stream = self.client.chat.completions.create(
            model=name,
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
            **options,
        )
        with stream:  # closed when the caller stops early (a timeout, an abandoned stream)
            for chunk in stream:
                usage = chunk.usage
                choice = chunk.choices[0] if chunk.choices else None
                yield Piece(
                    text=(choice.delta.content or "") if choice else "",
                    done=bool(choice and choice.finish_reason),
                    finish_reason=choice.finish_reason if choice else None,
                    prompt_tokens=usage.prompt_tokens if usage else None,
                    completion_tokens=usage.completion_tokens if usage else None,
                )

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

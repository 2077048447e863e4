"""Teacher and student backends: one small interface over Ollama and OpenAI-compatible servers.

Two backends share the :class:`Backend` interface:

* :class:`OllamaBackend` uses the official ``ollama`` client: chat (plain and streaming),
  options (``temperature``, ``num_predict`` for max tokens), ``keep_alive``; and, for the
  Playground and health checks, ``list_models()`` (``/api/tags``), ``loaded_models()``
  (``/api/ps``), ``show(name)`` (family, parameter size, quantization, context length) and
  ``version()``.
* :class:`OpenAIBackend` uses the ``openai`` client with its own ``base_url`` and key (the
  teacher, or a student on vLLM, llama.cpp, RunPod): chat, streaming, ``list_models()``.

Both also ``embed(texts)`` for the embedding similarity methods.

``chat()`` returns a :class:`ChatResult` (text, latency, tokens, and whether the tokens were
estimated). ``stream_chat()`` yields :class:`ChatChunk` pieces as they arrive; the first
carries the time to first token and the last has ``done=True`` and the complete ``result``::

    backend = student_backend(Settings.load())
    for chunk in backend.stream_chat([{"role": "user", "content": "Ciao!"}]):
        print(chunk.text, end="")
        if chunk.done:
            print(chunk.result.latency_ms, chunk.result.ttft_ms)

Every failure is a :class:`BackendError` (a ``ShadowTutorError``) with a message naming the fix:
:class:`BackendUnavailable` (nothing listening: how to start it), :class:`ModelNotFound`
(the exact ``ollama pull NAME``), :class:`BackendTimeout`, :class:`BackendHTTPError` (with
``status``) and :class:`BackendProtocolError` (malformed JSON, a stream cut mid-way).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import ollama
import openai
import pydantic

from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError
from shadowtutor.pricing import estimate_tokens

Messages = list[dict[str, Any]]


# --- errors ------------------------------------------------------------------------------------


class BackendError(ShadowTutorError):
    """A model server call failed; the message says what to do about it."""

    kind = "error"


class BackendUnavailable(BackendError):
    """Nothing answers at the configured address."""

    kind = "unavailable"


class ModelNotFound(BackendError):
    """The server runs but does not have the model."""

    kind = "model_not_found"


class BackendTimeout(BackendError):
    """The server did not answer in time."""

    kind = "timeout"


class BackendHTTPError(BackendError):
    """The server answered with an HTTP error status."""

    kind = "http_error"

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class BackendProtocolError(BackendError):
    """The server's answer could not be read (malformed JSON, stream cut mid-way)."""

    kind = "protocol_error"


# --- results -----------------------------------------------------------------------------------


@dataclass
class ChatResult:
    """One complete answer. ``usage_estimated`` is True when the server sent no token counts
    and ``prompt_tokens``/``completion_tokens`` were estimated from the text."""

    model: str
    provider: str
    text: str
    latency_ms: float
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    usage_estimated: bool = False
    finish_reason: str | None = None


@dataclass
class ChatChunk:
    """A piece of a streamed answer; the last one has ``done=True`` and ``result`` set."""

    text: str
    elapsed_ms: float
    first: bool = False
    done: bool = False
    result: ChatResult | None = None


@dataclass
class ModelInfo:
    """What a server says about one model (fields a backend does not know stay None)."""

    name: str
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    context_length: int | None = None
    size_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _finish_usage(
    messages: Messages, text: str, prompt: int | None, completion: int | None
) -> tuple[int, int, bool]:
    if prompt is not None and completion is not None:
        return prompt, completion, False
    prompt_text = " ".join(str(m.get("content") or "") for m in messages)
    return estimate_tokens(prompt_text), estimate_tokens(text), True


class Backend:
    """The interface both backends implement (see the module docstring)."""

    provider = "unknown"

    def __init__(self, *, base_url: str, model: str, timeout: float):
        self.base_url = base_url
        self.model = model
        self.timeout = timeout

    def chat(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatResult:
        result = None
        for chunk in self.stream_chat(
            messages, model=model, temperature=temperature, max_tokens=max_tokens
        ):
            result = chunk.result or result
        assert result is not None
        return result

    def stream_chat(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[ChatChunk]:
        raise NotImplementedError

    def list_models(self) -> list[ModelInfo]:
        raise NotImplementedError

    def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.provider} at {self.base_url} (model {self.model})"


# --- Ollama ------------------------------------------------------------------------------------


class OllamaBackend(Backend):
    """A model served by Ollama, through the official ``ollama`` client."""

    provider = "ollama"

    def __init__(
        self,
        *,
        base_url: str = "http://127.0.0.1:11434",
        model: str = "llama3",
        timeout: float = 10.0,
        keep_alive: str | float | None = "5m",
    ):
        super().__init__(base_url=base_url, model=model, timeout=timeout)
        self.keep_alive = keep_alive
        self.client = ollama.Client(host=base_url, timeout=timeout)

    def _error(self, exc: Exception, model: str | None = None) -> BackendError:
        if isinstance(exc, ollama.ResponseError):
            text = str(exc.error)
            if exc.status_code == 404 and "not found" in text and model:
                return ModelNotFound(
                    f"the Ollama server at {self.base_url} does not have model '{model}'; "
                    f"run: ollama pull {model}"
                )
            if exc.status_code == -1:  # an error object inside a stream
                return BackendProtocolError(f"Ollama at {self.base_url} reported: {text}")
            return BackendHTTPError(
                f"Ollama at {self.base_url} answered HTTP {exc.status_code}: {text}",
                exc.status_code,
            )
        if isinstance(exc, ConnectionError | httpx.ConnectError):
            return BackendUnavailable(
                f"no Ollama server is running at {self.base_url}; start it with `ollama serve` "
                "or fix SHADOWTUTOR_STUDENT_BASE_URL"
            )
        if isinstance(exc, httpx.TimeoutException):
            return BackendTimeout(f"Ollama at {self.base_url} did not answer in {self.timeout:g} s")
        if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError):
            return BackendProtocolError(
                f"Ollama at {self.base_url} sent an answer that is not valid JSON "
                f"({exc.__class__.__name__}); is that address really an Ollama server?"
            )
        if isinstance(exc, httpx.HTTPError):
            return BackendProtocolError(
                f"the connection to Ollama at {self.base_url} broke mid-answer: {exc}"
            )
        return BackendError(f"Ollama at {self.base_url} failed: {exc!r}")

    def stream_chat(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[ChatChunk]:
        name = model or self.model
        options: dict[str, Any] = {}
        if temperature is not None:
            options["temperature"] = temperature
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        start = time.perf_counter()
        ttft = None
        parts: list[str] = []
        last = None
        try:
            stream = self.client.chat(
                model=name,
                messages=messages,
                stream=True,
                options=options or None,
                keep_alive=self.keep_alive,
            )
            for part in stream:
                elapsed = (time.perf_counter() - start) * 1000
                if elapsed > self.timeout * 1000:
                    raise httpx.ReadTimeout("total time exceeded")
                piece = part.message.content or ""
                last = part
                if piece:
                    first = ttft is None
                    ttft = elapsed if first else ttft
                    parts.append(piece)
                    yield ChatChunk(text=piece, elapsed_ms=elapsed, first=first)
        except Exception as exc:  # every failure becomes a BackendError with advice
            raise self._error(exc, name) from exc
        if last is None or not last.done:
            raise BackendProtocolError(f"Ollama at {self.base_url} ended the stream before done")
        text = "".join(parts)
        prompt, completion, estimated = _finish_usage(
            messages, text, last.prompt_eval_count, last.eval_count
        )
        latency = (time.perf_counter() - start) * 1000
        result = ChatResult(
            model=name,
            provider=self.provider,
            text=text,
            latency_ms=latency,
            ttft_ms=ttft,
            prompt_tokens=prompt,
            completion_tokens=completion,
            usage_estimated=estimated,
            finish_reason=last.done_reason,
        )
        yield ChatChunk(text="", elapsed_ms=latency, done=True, result=result)

    def list_models(self) -> list[ModelInfo]:
        """Models pulled on the server (``/api/tags``)."""
        try:
            listed = self.client.list()
        except Exception as exc:
            raise self._error(exc) from exc
        return [_ollama_info(m.model or "", m.details, size=m.size) for m in listed.models]

    def loaded_models(self) -> list[ModelInfo]:
        """Models loaded in memory right now (``/api/ps``), with their context length."""
        try:
            loaded = self.client.ps()
        except Exception as exc:
            raise self._error(exc) from exc
        return [
            _ollama_info(
                m.model or m.name or "",
                m.details,
                size=m.size,
                context_length=m.context_length,
                extra={"size_vram": m.size_vram, "expires_at": str(m.expires_at or "")},
            )
            for m in loaded.models
        ]

    def show(self, name: str | None = None) -> ModelInfo:
        """Family, parameter size, quantization and context length of one model."""
        name = name or self.model
        try:
            shown = self.client.show(name)
        except Exception as exc:
            raise self._error(exc, name) from exc
        info = dict(shown.modelinfo or {})
        context = next(
            (v for k, v in info.items() if k.endswith(".context_length") and isinstance(v, int)),
            None,
        )
        return _ollama_info(
            name,
            shown.details,
            context_length=context,
            extra={"capabilities": list(shown.capabilities or []), "parameters": shown.parameters},
        )

    def version(self) -> str:
        """The Ollama server's version (``/api/version``)."""
        try:
            host = str(self.client._client.base_url).rstrip("/")
            resp = httpx.get(f"{host}/api/version", timeout=self.timeout)
            resp.raise_for_status()
            return str(resp.json()["version"])
        except httpx.HTTPStatusError as exc:
            raise BackendHTTPError(
                f"{self.base_url} answered HTTP {exc.response.status_code} to /api/version; "
                "is it an Ollama server?",
                exc.response.status_code,
            ) from exc
        except (KeyError, ValueError) as exc:
            raise self._error(json.JSONDecodeError(str(exc), "", 0)) from exc
        except Exception as exc:
            raise self._error(exc) from exc

    def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        try:
            resp = self.client.embed(model=model, input=texts, keep_alive=self.keep_alive)
        except Exception as exc:
            raise self._error(exc, model) from exc
        return [list(v) for v in resp.embeddings]


def _ollama_info(
    name: str,
    details: Any,
    *,
    size: Any = None,
    context_length: int | None = None,
    extra: dict[str, Any] | None = None,
) -> ModelInfo:
    return ModelInfo(
        name=name,
        family=getattr(details, "family", None),
        parameter_size=getattr(details, "parameter_size", None),
        quantization=getattr(details, "quantization_level", None),
        context_length=context_length,
        size_bytes=int(size) if size is not None else None,
        extra=extra or {},
    )


# --- OpenAI-compatible --------------------------------------------------------------------------


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

    def _missing_v1(self) -> bool:
        """The base URL's path does not end in /v1 (``http://host:8080`` for llama.cpp)."""
        from urllib.parse import urlsplit

        return not urlsplit(self.base_url).path.rstrip("/").endswith("/v1")

    def stream_chat(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[ChatChunk]:
        name = model or self.model
        kwargs: dict[str, Any] = {}
        if temperature is not None:
            kwargs["temperature"] = temperature
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        start = time.perf_counter()
        ttft = None
        parts: list[str] = []
        usage = None
        finish = None
        try:
            stream = self.client.chat.completions.create(
                model=name,
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
                **kwargs,
            )
            for chunk in stream:
                elapsed = (time.perf_counter() - start) * 1000
                if elapsed > self.timeout * 1000:
                    stream.close()
                    raise httpx.ReadTimeout("total time exceeded")
                usage = chunk.usage or usage
                if not chunk.choices:
                    continue
                finish = chunk.choices[0].finish_reason or finish
                piece = chunk.choices[0].delta.content or ""
                if piece:
                    first = ttft is None
                    ttft = elapsed if first else ttft
                    parts.append(piece)
                    yield ChatChunk(text=piece, elapsed_ms=elapsed, first=first)
        except Exception as exc:
            raise self._error(exc, name) from exc
        if finish is None:
            raise BackendProtocolError(f"{self.base_url} ended the stream without a finish reason")
        text = "".join(parts)
        prompt, completion, estimated = _finish_usage(
            messages,
            text,
            usage.prompt_tokens if usage else None,
            usage.completion_tokens if usage else None,
        )
        latency = (time.perf_counter() - start) * 1000
        result = ChatResult(
            model=name,
            provider=self.provider,
            text=text,
            latency_ms=latency,
            ttft_ms=ttft,
            prompt_tokens=prompt,
            completion_tokens=completion,
            usage_estimated=estimated,
            finish_reason=finish,
        )
        yield ChatChunk(text="", elapsed_ms=latency, done=True, result=result)

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


# --- factories ---------------------------------------------------------------------------------


def student_backend(settings: Settings, *, timeout: float | None = None) -> Backend:
    """The student configured in settings (``SHADOWTUTOR_STUDENT_*``)."""
    timeout = settings.student_timeout_s if timeout is None else timeout
    if settings.student_backend == "ollama":
        return OllamaBackend(
            base_url=settings.student_base_url,
            model=settings.student_model,
            timeout=timeout,
            keep_alive=settings.student_keep_alive or None,
        )
    if settings.student_backend == "openai":
        return OpenAIBackend(
            base_url=settings.student_base_url,
            api_key=settings.student_api_key,
            model=settings.student_model,
            timeout=timeout,
            provider="openai-compatible",
        )
    raise BackendError(
        f"SHADOWTUTOR_STUDENT_BACKEND={settings.student_backend!r} is not a backend; "
        "use `ollama` or `openai`"
    )


def teacher_api_key(settings: Settings) -> str:
    import os

    return settings.teacher_api_key or os.environ.get("OPENAI_API_KEY", "")


def teacher_backend(settings: Settings, *, timeout: float = 120.0) -> OpenAIBackend:
    """The teacher configured in settings (``SHADOWTUTOR_TEACHER_*``, else ``OPENAI_API_KEY``)."""
    return OpenAIBackend(
        base_url=settings.teacher_base_url,
        api_key=teacher_api_key(settings),
        model=settings.teacher_model,
        timeout=timeout,
        provider="openai",
    )

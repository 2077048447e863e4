"""A student served by Ollama: chat through the lean HTTP client
(:mod:`shadowtutor.backends.http`), everything else through the official ``ollama`` client.

Chat (plain and streaming, timed by :class:`shadowtutor.backends.base.Backend`), options
(``temperature``, ``num_predict`` for max tokens), ``keep_alive``; an OpenAI request
translated for the Ollama API (:func:`ollama_messages`, :func:`ollama_features`: string
content plus ``images``, tool-call arguments as objects, ``tools``, ``format``); and, for
the Playground and health checks, ``list_models()`` (``/api/tags``), ``loaded_models()``
(``/api/ps``), ``show(name)`` (family, parameter size, quantization, context length),
``version()`` and ``embed(texts)`` for the embedding similarity method.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import httpx
import ollama
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

# The request's keys that are not messages or sampling options (OpenAI's shapes).
FEATURES = ("tools", "tool_choice", "parallel_tool_calls", "functions", "response_format")


def ollama_features(features: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI request's features in the Ollama API: ``tools`` (the same shape; the older
    ``functions`` wrapped as tools), ``format`` (a JSON schema, or ``"json"`` for JSON mode).
    ``tool_choice`` and ``parallel_tool_calls`` have no Ollama equivalent and are left out."""
    out: dict[str, Any] = {}
    tools = features.get("tools") or [
        {"type": "function", "function": fn} for fn in features.get("functions") or []
    ]
    if tools:
        out["tools"] = tools
    response_format = features.get("response_format")
    if isinstance(response_format, dict):
        if response_format.get("type") == "json_object":
            out["format"] = "json"
        elif response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            out["format"] = schema or "json"
    return out


def ollama_message(message: dict[str, Any]) -> dict[str, Any]:
    """One OpenAI chat message in the Ollama API's form: content parts become a string
    (the text parts joined) plus ``images`` (base64, from ``data:`` URLs), tool-call
    arguments a JSON object instead of JSON text."""
    out = dict(message)
    content = message.get("content")
    if isinstance(content, list):
        texts, images = [], []
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") in ("text", "input_text"):
                texts.append(str(part.get("text") or ""))
            elif part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url") or "")
                if url.startswith("data:") and "," in url:
                    images.append(url.split(",", 1)[1])
        out["content"] = "\n".join(texts)
        if images:
            out["images"] = images
    elif content is None:
        out["content"] = ""
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [_ollama_call(c) for c in calls if isinstance(c, dict)]
    return out


def _ollama_call(call: dict[str, Any]) -> dict[str, Any]:
    fn = dict(call.get("function") or {})
    args = fn.get("arguments")
    if isinstance(args, str):
        try:
            fn["arguments"] = json.loads(args) if args.strip() else {}
        except ValueError:
            fn["arguments"] = {}
    return {"function": fn}


def ollama_messages(messages: Messages) -> Messages:
    """The messages in the Ollama API's form (see :func:`ollama_message`); messages already
    in it go unchanged."""
    return [ollama_message(m) if isinstance(m, dict) else m for m in messages]


class OllamaBackend(Backend):
    """A model served by Ollama, through the official ``ollama`` client."""

    provider = "ollama"
    # What to fix when nothing listens: the settings' student by default; a registered
    # student's backend names the student instead (students.fanout).
    address_hint = "fix SHADOWTUTOR_STUDENT_BASE_URL"

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
        self._http = LeanClient(str(self.client._client.base_url), timeout)

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
                f"or {self.address_hint}"
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

    def _pieces(
        self, name: str, messages: Messages, options: dict[str, Any]
    ) -> Generator[Piece, None, None]:
        # /api/chat through the lean client (kept-alive http.client, one JSON parse per
        # line): the same request the ollama SDK sends, at a fraction of its CPU.
        options = dict(options)
        features = {k: options.pop(k) for k in FEATURES if k in options}
        if "max_tokens" in options:
            options["num_predict"] = options.pop("max_tokens")
        body: dict[str, Any] = {
            "model": name,
            "messages": ollama_messages(messages),
            "stream": True,
        }
        body |= ollama_features(features)
        if options:
            body["options"] = options
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        lines = self._http.stream_lines("/api/chat", fastjson.dumps(body, default=str))
        try:
            for line in lines:
                part = fastjson.loads(line)
                if part.get("error"):
                    raise ollama.ResponseError(str(part["error"]))
                message = part.get("message") or {}
                calls = message.get("tool_calls") or None
                yield Piece(
                    tool_calls=[
                        {"index": n, **(c.get("function") or {})} for n, c in enumerate(calls)
                    ]
                    if calls
                    else None,
                    text=message.get("content") or "",
                    done=bool(part.get("done")),
                    finish_reason=part.get("done_reason"),
                    prompt_tokens=part.get("prompt_eval_count"),
                    completion_tokens=part.get("eval_count"),
                )
        except StatusError as exc:
            raise ollama.ResponseError(exc.body.decode("utf-8", "replace"), exc.status) from exc
        finally:
            lines.close()

    def _incomplete(self) -> str:
        return f"Ollama at {self.base_url} ended the stream before done"

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

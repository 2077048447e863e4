"""The backend interface, its results and errors, and the stream timing written once.

A backend (:mod:`shadowtutor.backends.ollama`, :mod:`shadowtutor.backends.openai`) only opens
its server's stream and turns each raw part into a :class:`Piece`; :meth:`Backend.stream_chat`
does the rest for every backend alike: the time to first token and the total latency
(:class:`StreamClock`), the total-time timeout, the token counts (the server's, else
estimated), the end-of-stream check, and turning every failure into a :class:`BackendError`.

``chat()`` returns an :class:`~shadowtutor.backends.answer.Answer` (text, latency, tokens, and
whether the tokens were estimated). ``stream_chat()`` yields :class:`ChatChunk` pieces as they
arrive; the first carries the time to first token and the last has ``done=True`` and the
complete ``result``::

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

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from shadowtutor.backends.answer import Answer
from shadowtutor.cost.pricing import estimate_usage
from shadowtutor.errors import ShadowTutorError

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
class ChatChunk:
    """A piece of a streamed answer; the last one has ``done=True`` and ``result`` set."""

    text: str
    elapsed_ms: float
    first: bool = False
    done: bool = False
    result: Answer | None = None


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


@dataclass
class Piece:
    """One raw part of a server's stream, as a backend reads it: text, and what the server
    says at the end (finish reason, token counts) when this part carries it."""

    text: str = ""
    done: bool = False
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # tool-call parts: [{index, name, arguments}]; a text argument is a piece to append (an
    # OpenAI stream's delta), an object is the whole arguments (Ollama's)
    tool_calls: list[dict[str, Any]] | None = None


class _CallParts:
    """The tool calls of one stream, assembled from its :class:`Piece` parts."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, Any]] = {}

    def add(self, parts: list[dict[str, Any]]) -> None:
        for n, part in enumerate(parts):
            call = self.calls.setdefault(part.get("index", n), {"name": "", "arguments": None})
            call["name"] = call["name"] or part.get("name") or ""
            args = part.get("arguments")
            if isinstance(args, str):
                call["arguments"] = (call["arguments"] or "") + args
            elif args is not None:
                call["arguments"] = args

    def result(self) -> list[dict[str, Any]] | None:
        found = [self.calls[i] for i in sorted(self.calls)]
        return [
            c | {"arguments": {} if c["arguments"] is None else c["arguments"]} for c in found
        ] or None


class StreamClock:
    """Times one stream: started when made; :meth:`tick` on every piece marks the first one.

    ``ttft_ms`` is the time to the first ticked piece, ``elapsed_ms()`` the time so far. Used
    by the backends around the student's stream and by the request path around the
    teacher's."""

    __slots__ = ("start", "first")

    def __init__(self, start: float | None = None):
        self.start = time.perf_counter() if start is None else start
        self.first: float | None = None

    def elapsed_ms(self, now: float | None = None) -> float:
        return ((time.perf_counter() if now is None else now) - self.start) * 1000

    def tick(self, now: float | None = None) -> bool:
        """Mark a piece; True when it is the first."""
        if self.first is not None:
            return False
        self.first = time.perf_counter() if now is None else now
        return True

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first is None else (self.first - self.start) * 1000


class Backend:
    """The interface both backends implement (see the module docstring).

    A backend implements :meth:`_pieces` (open the stream, yield :class:`Piece`), ``_error``
    (a failure as a :class:`BackendError` with advice) and ``_incomplete`` (the message for a
    stream that ended without its end marker); the timing lives here, once."""

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
        features: dict[str, Any] | None = None,
    ) -> Answer:
        result = None
        for chunk in self.stream_chat(
            messages,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            features=features,
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
        features: dict[str, Any] | None = None,
    ) -> Iterator[ChatChunk]:
        """The answer as it streams (see the module docstring). ``features`` are the
        request's tools, tool choice and response format (OpenAI's shapes; each backend
        translates them for its server)."""
        name = model or self.model
        clock = StreamClock()
        parts: list[str] = []
        calls = _CallParts()
        end = Piece()
        options: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        options = {k: v for k, v in options.items() if v is not None} | (features or {})
        try:
            pieces = self._pieces(name, messages, options)
            try:
                for piece in pieces:
                    elapsed = clock.elapsed_ms()
                    if elapsed > self.timeout * 1000:
                        raise httpx.ReadTimeout("total time exceeded")
                    end.done = end.done or piece.done
                    end.finish_reason = piece.finish_reason or end.finish_reason
                    if piece.prompt_tokens is not None or piece.completion_tokens is not None:
                        end.prompt_tokens = piece.prompt_tokens
                        end.completion_tokens = piece.completion_tokens
                    if piece.tool_calls:
                        calls.add(piece.tool_calls)
                        clock.tick()
                    if piece.text:
                        parts.append(piece.text)
                        yield ChatChunk(text=piece.text, elapsed_ms=elapsed, first=clock.tick())
            finally:
                pieces.close()  # a timeout or an abandoned stream closes the connection
        except BackendError:
            raise
        except Exception as exc:  # every failure becomes a BackendError with advice
            raise self._error(exc, name) from exc
        if not end.done:
            raise BackendProtocolError(self._incomplete())
        text = "".join(parts)
        prompt, completion, estimated = estimate_usage(
            messages, text, end.prompt_tokens, end.completion_tokens
        )
        latency = clock.elapsed_ms()
        result = Answer(
            model=name,
            provider=self.provider,
            text=text,
            latency_ms=latency,
            ttft_ms=clock.ttft_ms,
            prompt_tokens=prompt,
            completion_tokens=completion,
            usage_estimated=estimated,
            finish_reason=end.finish_reason,
            tool_calls=calls.result(),
        )
        yield ChatChunk(text="", elapsed_ms=latency, done=True, result=result)

    def _pieces(
        self, name: str, messages: Messages, options: dict[str, Any]
    ) -> Generator[Piece, None, None]:
        """Open the server's stream of model ``name`` and yield its parts; ``options`` holds
        ``temperature`` and ``max_tokens`` when the caller set them, and the request's
        features (``tools``, ``tool_choice``, ``parallel_tool_calls``, ``response_format``)
        in OpenAI's shapes."""
        raise NotImplementedError

    def _error(self, exc: Exception, model: str | None = None) -> BackendError:
        return BackendError(f"{self.describe()} failed: {exc!r}")

    def _incomplete(self) -> str:
        return f"{self.base_url} ended the stream before its end"

    def list_models(self) -> list[ModelInfo]:
        raise NotImplementedError

    def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.provider} at {self.base_url} (model {self.model})"

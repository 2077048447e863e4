"""Wrap an ``openai.OpenAI`` / ``openai.AsyncOpenAI`` client so its chat calls are shadowed.

::

    collector = ShadowCollector()            # settings from the environment
    client = collector.wrap(openai.OpenAI())
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=msgs)  # as before

``client.chat.completions.create(...)`` returns exactly what the unwrapped client returns: the
same ``ChatCompletion`` object, or for ``stream=True`` the same chunk objects in the same order
(the stream is teed: the app iterates it as usual, and the record is made after the last
chunk). Teacher errors are raised exactly as the unwrapped client raises them. Everything else
on the client (``embeddings``, ``models``, ``with_options``...) is the original, untouched.

Optional per-call context, removed before the call reaches the API::

    client.chat.completions.create(..., shadow={"user": "u-42", "conversation_id": "c-7",
        "category": "business", "language": "it", "metadata": {"prompt_id": "faq-v3"}})

The ``user`` is pseudonymised before it is stored. Without ``shadow``, the OpenAI ``user`` (or
``safety_identifier``) argument is used as the user.

Routing: every call asks :func:`shadowtutor.gate.routing.route`. When it answers ``student``
(a rollout is in progress), the student's answer is returned shaped as the teacher's type (a
``ChatCompletion``, or a stream of ``ChatCompletionChunk``; a streamed student answer is sent
once complete, as one content chunk). If the student fails or times out the teacher answers
instead (counted in ``student_fallbacks``); for a sampled share the teacher also answers in the
background so the pair is still logged.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from shadowtutor.backends.clients import ChatResult
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.collect.job import Job, error_text, teacher_from_completion
from shadowtutor.gate import routing
from shadowtutor.log import record as logrecord

# --- shaping a student answer as an OpenAI response ---------------------------------------------


def completion_dict(result: ChatResult, *, id: str | None = None) -> dict[str, Any]:
    """An OpenAI chat.completion object (as a dict) carrying a student's answer."""
    return {
        "id": id or f"chatcmpl-st-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "finish_reason": result.finish_reason or "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens or 0,
            "completion_tokens": result.completion_tokens or 0,
            "total_tokens": (result.prompt_tokens or 0) + (result.completion_tokens or 0),
        },
    }


def chunk_dicts(
    result: ChatResult, *, include_usage: bool = False, id: str | None = None
) -> list[dict[str, Any]]:
    """The chat.completion.chunk objects (as dicts) of a student's answer, as a stream."""
    full = completion_dict(result, id=id)
    base = {k: full[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [
        chunk({"role": "assistant", "content": ""}, None),
        chunk({"content": result.text}, None),
        chunk({}, full["choices"][0]["finish_reason"]),
    ]
    if include_usage:
        chunks.append(base | {"choices": [], "usage": full["usage"]})
    return chunks


def result_from_completion(obj: Any, latency_ms: float) -> ChatResult:
    """A ChatResult from a teacher's ChatCompletion (for the background teacher call)."""
    answer = teacher_from_completion(obj)
    return ChatResult(
        model=answer["model"] or "unknown",
        provider="openai",
        text=answer["response"],
        latency_ms=latency_ms,
        prompt_tokens=answer["prompt_tokens"],
        completion_tokens=answer["completion_tokens"],
        usage_estimated=answer["prompt_tokens"] is None,
    )


# --- per-call context ---------------------------------------------------------------------------


class _Call:
    """What the request path knows about one call (cheap to build)."""

    __slots__ = (
        "kwargs",
        "messages",
        "user",
        "conversation_id",
        "category",
        "language",
        "meta",
        "student_error",
    )

    def __init__(self, kwargs: dict[str, Any], shadow: dict[str, Any] | None):
        shadow = shadow or {}
        messages = kwargs.get("messages")
        if not isinstance(messages, list):  # an iterable would be used up by the API call
            messages = list(messages or [])
            kwargs["messages"] = messages
        self.kwargs = kwargs
        self.messages = list(messages)  # the app may append to its list after the call
        self.user = shadow.get("user") or kwargs.get("user") or kwargs.get("safety_identifier")
        self.conversation_id = shadow.get("conversation_id")
        self.category = shadow.get("category")
        self.language = shadow.get("language")
        self.meta = dict(shadow.get("metadata") or {})
        self.student_error: str | None = None

    def job(self, route: routing.Route, category: str | None, **teacher: Any) -> Job:
        kw = self.kwargs
        max_tokens = kw.get("max_completion_tokens") or kw.get("max_tokens")
        options = {"temperature": kw.get("temperature"), "max_tokens": max_tokens}
        return Job(
            messages=self.messages,
            user_hash=logrecord.pseudonymize(self.user),
            conversation_id=self.conversation_id,
            category=category,
            language=self.language,
            metadata=self.meta | {"teacher_model": kw.get("model")},
            route=route,
            options=options,
            student_error=self.student_error,
            category_detected=self.category is None,
            **teacher,
        )


def _teacher_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = dict(kwargs)
    out.pop("stream", None)
    out.pop("stream_options", None)
    return out


def _student_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": None,
        "temperature": kwargs.get("temperature"),
        "max_tokens": kwargs.get("max_completion_tokens") or kwargs.get("max_tokens"),
    }


def _include_usage(kwargs: dict[str, Any]) -> bool:
    return bool((kwargs.get("stream_options") or {}).get("include_usage"))


def _student_response(result: ChatResult, kwargs: dict[str, Any]) -> Any:
    if kwargs.get("stream"):
        return [
            ChatCompletionChunk.model_validate(c)
            for c in chunk_dicts(result, include_usage=_include_usage(kwargs))
        ]
    return ChatCompletion.model_validate(completion_dict(result))


# --- tee streams --------------------------------------------------------------------------------


class TeeStream:
    """Yields the teacher's stream chunks unchanged and records them when the stream ends.

    Everything else (``response``, ``close()``, ``with`` blocks) is the original stream's.
    """

    def __init__(
        self,
        stream: Any,
        start: float,
        done: Callable[[list[Any], float, float | None], None],
        failed: Callable[[BaseException | None], None],
    ):
        self._stream = stream
        self._next = getattr(stream, "__next__", None)
        self._start = start
        self._chunks: list[Any] = []
        self._first: float | None = None
        self._done = done
        self._failed = failed
        self._ended = False

    def __iter__(self) -> TeeStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self._next()
        except StopIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        if self._first is None:
            self._first = time.perf_counter()
        self._chunks.append(chunk)
        return chunk

    def _end(self, exc: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        now = time.perf_counter()
        if exc is None:
            ttft = None if self._first is None else (self._first - self._start) * 1000
            self._done(self._chunks, (now - self._start) * 1000, ttft)
        else:
            self._failed(exc)

    def __enter__(self) -> TeeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._abandon()
        self._stream.close()

    def _abandon(self) -> None:
        if not self._ended:  # the app stopped reading early: no complete answer to log
            self._ended = True
            self._failed(None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class AsyncTeeStream(TeeStream):
    """The ``async for`` twin of :class:`TeeStream`."""

    def __init__(self, stream: Any, start: float, done: Any, failed: Any):
        super().__init__(stream, start, done, failed)
        self._anext = stream.__anext__

    def __aiter__(self) -> AsyncTeeStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._anext()
        except StopAsyncIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        if self._first is None:
            self._first = time.perf_counter()
        self._chunks.append(chunk)
        return chunk

    async def __aenter__(self) -> AsyncTeeStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:  # type: ignore[override]
        self._abandon()
        await self._stream.close()


class _ListStream:
    """A student's answer served as a stream (sync and async iteration)."""

    def __init__(self, chunks: list[Any]):
        self._chunks = chunks

    def __iter__(self) -> Any:
        return iter(self._chunks)

    async def __aiter__(self) -> Any:
        for c in self._chunks:
            yield c

    def __enter__(self) -> _ListStream:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    async def __aenter__(self) -> _ListStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass


# --- the wrapped client -------------------------------------------------------------------------


class _Delegate:
    def __init__(self, target: Any):
        self._target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class ShadowCompletions(_Delegate):
    """``client.chat.completions`` with a shadowed ``create``."""

    def __init__(self, target: Any, collector: ShadowCollector, sync_create: Callable[..., Any]):
        super().__init__(target)
        self._c = collector
        self._sync_create = sync_create

    # Shared pieces of the sync and async paths.
    def _begin(
        self, kwargs: dict[str, Any], shadow: Any
    ) -> tuple[_Call, routing.Route, bool, str | None]:
        call = _Call(kwargs, shadow)
        route, shadowed, category = self._c.decide(
            call.messages,
            user=call.user,
            conversation_id=call.conversation_id,
            category=call.category,
        )
        return call, route, shadowed, category

    def _background_teacher(self, kwargs: dict[str, Any]) -> Callable[[], ChatResult]:
        teacher_kwargs = _teacher_kwargs(kwargs)

        def call() -> ChatResult:
            start = time.perf_counter()
            resp = self._sync_create(**teacher_kwargs)
            return result_from_completion(resp, (time.perf_counter() - start) * 1000)

        return call

    def _student_served(
        self,
        call: _Call,
        route: routing.Route,
        shadowed: bool,
        category: str | None,
        result: ChatResult,
    ) -> Any:
        self._c.count("served_by_student")
        if shadowed:
            job = call.job(route, category, teacher_call=self._background_teacher(call.kwargs))
            job.student_result = result
            self._c.submit(job)
        shaped = _student_response(result, call.kwargs)
        return _ListStream(shaped) if call.kwargs.get("stream") else shaped

    def _student_failed(self, call: _Call, exc: BaseException) -> None:
        self._c.breaker.failure()
        self._c.count("student_fallbacks")
        self._c.last_error = f"student (serving): {exc}"
        call.student_error = error_text(exc)
        call.meta["fallback"] = call.student_error

    def _submit_teacher(
        self, call: _Call, route: routing.Route, category: str | None, **teacher: Any
    ) -> None:
        try:
            self._c.submit(call.job(route, category, **teacher))
        except Exception as exc:  # never into the app
            self._c.last_error = f"submit: {exc!r}"

    def _stream_callbacks(
        self, call: _Call, route: routing.Route, category: str | None
    ) -> tuple[Any, Any]:
        def done(chunks: list[Any], latency: float, ttft: float | None) -> None:
            self._submit_teacher(
                call,
                route,
                category,
                teacher_chunks=chunks,
                teacher_latency_ms=latency,
                teacher_ttft_ms=ttft,
            )

        def failed(exc: BaseException | None) -> None:
            self._c.count("teacher_errors" if exc is not None else "streams_abandoned")

        return done, failed

    def create(self, *args: Any, shadow: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        try:
            call, route, shadowed, category = self._begin(kwargs, shadow)
        except Exception:
            return self._target.create(*args, **kwargs)
        if route.served_by == "student":
            if self._c.breaker.allow():
                try:
                    result = self._c.student.chat(call.messages, **_student_options(kwargs))
                except Exception as exc:
                    self._student_failed(call, exc)
                else:
                    self._c.breaker.success()
                    return self._student_served(call, route, shadowed, category, result)
            route = routing.Route("teacher", route.stage, route.bucket, route.eligible)
        start = time.perf_counter()
        try:
            resp = self._target.create(*args, **kwargs)
        except BaseException:
            self._c.count("teacher_errors")
            raise
        if not shadowed:
            return resp
        if kwargs.get("stream"):
            return TeeStream(resp, start, *self._stream_callbacks(call, route, category))
        self._submit_teacher(
            call,
            route,
            category,
            teacher_obj=resp,
            teacher_latency_ms=(time.perf_counter() - start) * 1000,
        )
        return resp


class AsyncShadowCompletions(ShadowCompletions):
    """``client.chat.completions`` of an AsyncOpenAI client with a shadowed ``create``."""

    async def create(self, *args: Any, shadow: dict[str, Any] | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            call, route, shadowed, category = self._begin(kwargs, shadow)
        except Exception:
            return await self._target.create(*args, **kwargs)
        if route.served_by == "student":
            if self._c.breaker.allow():
                try:
                    result = await asyncio.to_thread(
                        self._c.student.chat, call.messages, **_student_options(kwargs)
                    )
                except Exception as exc:
                    self._student_failed(call, exc)
                else:
                    self._c.breaker.success()
                    return self._student_served(call, route, shadowed, category, result)
            route = routing.Route("teacher", route.stage, route.bucket, route.eligible)
        start = time.perf_counter()
        try:
            resp = await self._target.create(*args, **kwargs)
        except BaseException:
            self._c.count("teacher_errors")
            raise
        if not shadowed:
            return resp
        if kwargs.get("stream"):
            return AsyncTeeStream(resp, start, *self._stream_callbacks(call, route, category))
        self._submit_teacher(
            call,
            route,
            category,
            teacher_obj=resp,
            teacher_latency_ms=(time.perf_counter() - start) * 1000,
        )
        return resp


class _ShadowChat(_Delegate):
    def __init__(self, target: Any, completions: ShadowCompletions):
        super().__init__(target)
        self.completions = completions


class ShadowClient(_Delegate):
    """The wrapped client: ``chat.completions.create`` is shadowed, the rest is the original."""

    def __init__(self, client: Any, collector: ShadowCollector):
        super().__init__(client)
        self.collector = collector
        if isinstance(client, openai.AsyncOpenAI):
            # Background teacher calls run on worker threads, which need a sync client.
            sync = openai.OpenAI(
                api_key=client.api_key,
                base_url=client.base_url,
                organization=client.organization,
                project=client.project,
                timeout=client.timeout,
                max_retries=client.max_retries,
            )
            completions: ShadowCompletions = AsyncShadowCompletions(
                client.chat.completions, collector, sync.chat.completions.create
            )
        else:
            completions = ShadowCompletions(
                client.chat.completions, collector, client.chat.completions.create
            )
        self.chat = _ShadowChat(client.chat, completions)

    @property
    def unwrapped(self) -> Any:
        return self._target


def wrap(client: Any, collector: ShadowCollector) -> ShadowClient:
    """Wrap an OpenAI or AsyncOpenAI client (anything else: a TypeError naming what is
    supported)."""
    if not isinstance(client, openai.OpenAI | openai.AsyncOpenAI):
        raise TypeError(
            f"ShadowCollector.wrap() takes an openai.OpenAI or openai.AsyncOpenAI client, "
            f"not {type(client).__name__}"
        )
    return ShadowClient(client, collector)

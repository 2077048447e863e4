"""Wrap an ``openai.OpenAI`` / ``openai.AsyncOpenAI`` client so its chat calls are shadowed.

::

    collector = ShadowCollector()            # settings from the environment
    client = collector.wrap(openai.OpenAI())
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=msgs)  # as before

``client.chat.completions.create(...)`` returns exactly what the unwrapped client returns: the
same ``ChatCompletion`` object, or for ``stream=True`` the same chunk objects in the same order
(the stream is teed: the app iterates it as usual, and the record is made after the last
chunk). Teacher errors are raised exactly as the unwrapped client raises them.
``client.chat.completions.parse(...)`` is shadowed the same way (its pydantic
``response_format`` read as its JSON schema; the teacher always serves it, since its answer is
a parsed object), and ``client.with_options(...)`` (``copy()``) returns a wrapped client.
``chat.completions.stream(...)``, ``with_raw_response`` and ``with_streaming_response`` go to
the teacher untouched and are not recorded: each style is said once in a warning and counted
in ``stats()["unrecorded_calls"]``. ``client.responses.create(...)`` (streamed too) and a
wrapped ``anthropic.Anthropic`` / ``AsyncAnthropic`` client's ``messages.create`` and
``messages.stream`` are shadowed by :mod:`shadowtutor.collect.wrapper_protocols`. Everything
else on the client (``embeddings``, ``models``...) is the original, untouched.

Optional per-call context, removed before the call reaches the API::

    client.chat.completions.create(..., shadow={"user": "u-42", "conversation_id": "c-7",
        "category": "business", "language": "it", "metadata": {"prompt_id": "faq-v3"}})

The ``user`` is pseudonymised before it is stored. Without ``shadow``, the OpenAI ``user`` (or
``safety_identifier``) argument is used as the user.

The request path itself (decide -> serve -> hand-off) is :mod:`shadowtutor.collect.path`,
written once for this wrapper (sync and async) and the proxy; this module only says how to
talk to an OpenAI client and how its answers look.

Routing: every call asks :func:`shadowtutor.gate.routing.route`. When it answers ``student``
(a rollout is in progress), the student's answer is returned shaped as the teacher's type (a
``ChatCompletion``, or a stream of ``ChatCompletionChunk``; a streamed student answer is sent
once complete, as one content chunk). If the student fails or times out the teacher answers
instead (counted in ``student_fallbacks``); for a sampled share the teacher also answers in the
background so the pair is still logged.
"""

from __future__ import annotations

import functools
from typing import Any

import openai
from openai.lib._parsing import type_to_response_format_param
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from shadowtutor.backends import Answer, StreamClock
from shadowtutor.collect import request_ids, wrapper_protocols
from shadowtutor.collect.job import Call, Context
from shadowtutor.collect.openai_shape import (
    ChatRequest,
    chunk_dicts,
    completion_dict,
    result_from_completion,
)
from shadowtutor.collect.path import AsyncRequestPath, Front, RequestPath, SyncRequestPath, timed

# --- tee streams --------------------------------------------------------------------------------


class TeeStream:
    """Yields the teacher's stream chunks unchanged and records them when the stream ends.

    Everything else (``response``, ``close()``, ``with`` blocks) is the original stream's.
    """

    def __init__(self, stream: Any, clock: StreamClock, path: RequestPath, call: Call):
        self._stream = stream
        self._next: Any = getattr(stream, "__next__", None)
        self._clock = clock
        self._path = path
        self._call = call
        self._chunks: list[Any] = []
        self._ended = False

    def __iter__(self) -> TeeStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self._next()
        except BaseException as exc:
            self._end(exc)
            raise
        return self._took(chunk)

    def _took(self, chunk: Any) -> Any:
        self._clock.tick()
        self._chunks.append(chunk)
        return chunk

    def _end(self, exc: BaseException) -> None:
        if self._ended:
            return
        self._ended = True
        if isinstance(exc, StopIteration | StopAsyncIteration):
            self._path.stream_done(self._call, self._clock, teacher_chunks=self._chunks)
        else:
            self._path.stream_failed(exc)

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
            self._path.stream_failed(None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class AsyncTeeStream(TeeStream):
    """The ``async for`` twin of :class:`TeeStream`."""

    def __init__(self, stream: Any, clock: StreamClock, path: RequestPath, call: Call):
        super().__init__(stream, clock, path, call)
        self._anext = stream.__anext__

    def __aiter__(self) -> AsyncTeeStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._anext()
        except BaseException as exc:
            self._end(exc)
            raise
        return self._took(chunk)

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


class _OpenAICompletions(_Delegate, RequestPath):
    """The request path's OpenAI-client side, shared by the sync and the async wrapper: how
    to ask the wrapped client and how its answers look. Only the I/O differs below."""

    def __init__(self, target: Any, collector: Front, sync_create: Any):
        _Delegate.__init__(self, target)
        RequestPath.__init__(self, collector)
        self._sync_create = sync_create  # background teacher calls run on worker threads

    def begin(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], shadow: Any, method: str = "create"
    ) -> Call:
        """The call of ``method`` (``create``, or ``parse``: its answer is a parsed object the
        student cannot give, so the teacher serves it at every stage)."""
        origin = (method, args, kwargs)
        try:
            if method == "parse":
                request = ChatRequest.parse(parse_body(kwargs), coerce=True)
                kwargs["messages"] = request.body["messages"]  # a generator is used up
                call = self.collector.begin(request, Context.from_shadow(shadow), origin)
                self.collector.teacher_only(call, "call: parse")
                return call
            request = ChatRequest.parse(kwargs, coerce=True)
            return self.collector.begin(request, Context.from_shadow(shadow), origin)
        except Exception:  # never into the app: the call goes to the teacher untouched
            return Call(None, origin=origin)

    def ask_teacher(self, call: Call) -> Any:
        method, args, kwargs = call.origin
        return getattr(self._target, method)(*args, **kwargs)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        """``chat.completions.stream(...)``: passed to the teacher untouched, not recorded
        (said once, counted in ``unrecorded_calls``); ``create(stream=True)`` is shadowed."""
        self.collector.unrecorded("chat.completions.stream()")
        return self._target.stream(*args, **kwargs)

    @property
    def with_raw_response(self) -> Any:
        return _Unrecorded(self._target.with_raw_response, self.collector, "with_raw_response")

    @property
    def with_streaming_response(self) -> Any:
        target = self._target.with_streaming_response
        return _Unrecorded(target, self.collector, "with_streaming_response")

    def background_teacher(self, call: Call) -> Any:
        assert call.request is not None
        body = call.request.teacher_body()

        def ask() -> Answer:
            return result_from_completion(*timed(lambda: self._sync_create(**body)))

        return ask

    def student_reply(self, call: Call, result: Answer) -> Any:
        assert call.request is not None
        if call.stream:
            include = call.request.include_usage
            return _ListStream(
                [
                    ChatCompletionChunk.model_validate(c)
                    for c in chunk_dicts(result, include_usage=include)
                ]
            )
        return ChatCompletion.model_validate(completion_dict(result))

    def teacher_answer(self, reply: Any) -> dict[str, Any]:
        return {"teacher_obj": reply}


class ShadowCompletions(_OpenAICompletions, SyncRequestPath):
    """``client.chat.completions`` with a shadowed ``create`` and ``parse``."""

    def create(self, *args: Any, shadow: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        call = self.begin(args, kwargs, shadow)
        return request_ids.tag(self.run(call), call.id)

    def parse(self, *args: Any, shadow: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        call = self.begin(args, kwargs, shadow, "parse")
        return request_ids.tag(self.run(call), call.id)

    def tee(self, call: Call, reply: Any, clock: StreamClock) -> Any:
        return TeeStream(reply, clock, self, call)


class AsyncShadowCompletions(_OpenAICompletions, AsyncRequestPath):
    """``client.chat.completions`` of an AsyncOpenAI client with a shadowed ``create``."""

    async def create(self, *args: Any, shadow: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        call = self.begin(args, kwargs, shadow)
        return request_ids.tag(await self.run(call), call.id)

    async def parse(self, *args: Any, shadow: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        call = self.begin(args, kwargs, shadow, "parse")
        return request_ids.tag(await self.run(call), call.id)

    def tee(self, call: Call, reply: Any, clock: StreamClock) -> Any:
        return AsyncTeeStream(reply, clock, self, call)


class _ShadowChat(_Delegate):
    def __init__(self, target: Any, completions: _OpenAICompletions):
        super().__init__(target)
        self.completions = completions


class _Unrecorded(_Delegate):
    """``completions.with_raw_response`` (or ``with_streaming_response``): every call goes to
    the teacher untouched, counted and said once (its raw HTTP response is the app's)."""

    def __init__(self, target: Any, collector: Front, style: str):
        super().__init__(target)
        self._collector = collector
        self._style = style

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._target, name)
        if not callable(found):
            return found
        style = f"chat.completions.{self._style}.{name}()"

        def call(*args: Any, **kwargs: Any) -> Any:
            self._collector.unrecorded(style)
            return found(*args, **kwargs)

        return call


def parse_body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``parse()``'s arguments as the request body it sends: a pydantic ``response_format``
    becomes its JSON schema (the request's kind and what the student gets)."""
    body = dict(kwargs)
    response_format = body.get("response_format")
    if isinstance(response_format, type):
        body["response_format"] = type_to_response_format_param(response_format)
    return body


class ShadowClient(_Delegate):
    """The wrapped client: ``chat.completions.create`` and ``parse`` are shadowed, and
    ``with_options()`` (``copy()``) gives a wrapped client; the rest is the original."""

    def __init__(self, client: Any, collector: Front):
        super().__init__(client)
        self.collector = collector
        sync = client
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
            completions: _OpenAICompletions = AsyncShadowCompletions(
                client.chat.completions, collector, sync.chat.completions.create
            )
        else:
            completions = ShadowCompletions(
                client.chat.completions, collector, client.chat.completions.create
            )
        self.chat = _ShadowChat(client.chat, completions)
        self._sync = sync

    @functools.cached_property
    def responses(self) -> Any:
        """``responses`` with ``create`` shadowed (:mod:`shadowtutor.collect.wrapper_protocols`),
        made on first use: the SDK imports its Responses types only then."""
        return wrapper_protocols.shadow_responses(self._target, self.collector, self._sync, STREAMS)

    @property
    def unwrapped(self) -> Any:
        return self._target

    def with_options(self, *args: Any, **kwargs: Any) -> ShadowClient:
        """The client's ``with_options(...)``, wrapped like this one (same collector)."""
        return ShadowClient(self._target.with_options(*args, **kwargs), self.collector)

    copy = with_options


STREAMS = (TeeStream, AsyncTeeStream, _ListStream)  # what the other protocols' calls use


def wrap(client: Any, collector: Front) -> Any:
    """Wrap an OpenAI or AsyncOpenAI client, or an Anthropic or AsyncAnthropic one
    (:mod:`shadowtutor.collect.wrapper_protocols`); anything else: a TypeError naming what is
    supported."""
    other = wrapper_protocols.wrap_anthropic(client, collector, STREAMS)
    if other is not None:
        return other
    if not isinstance(client, openai.OpenAI | openai.AsyncOpenAI):
        raise TypeError(
            f"ShadowCollector.wrap() takes an openai.OpenAI or openai.AsyncOpenAI client, or an "
            f"anthropic.Anthropic or anthropic.AsyncAnthropic one, not {type(client).__name__}"
        )
    return ShadowClient(client, collector)

"""The wrapper's side of the APIs besides chat: Claude's Messages API on a wrapped
``anthropic.Anthropic`` / ``anthropic.AsyncAnthropic`` client, and ``responses.create`` on a
wrapped OpenAI client (:mod:`shadowtutor.collect.wrapper` registers them in a few lines).

::

    client = shadowtutor.wrap(anthropic.Anthropic(), collector)
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=512, messages=msgs)
    with client.messages.stream(model=..., max_tokens=..., messages=msgs) as stream:
        for text in stream.text_stream: ...

``messages.create`` (``stream=True`` too) and ``messages.stream`` return exactly what the
unwrapped client returns (the stream is teed: the record is made after its last event);
``responses.create`` likewise, streamed or not. The request is read into the chat form for
routing by kind, the student and the record (:mod:`shadowtutor.collect.anthropic_shape`,
:mod:`shadowtutor.collect.responses_shape`); after a GO the student's answer comes back as the
SDK's own types (a ``Message`` or its stream events; a ``Response`` or its events). A
``responses.create`` with ``previous_response_id`` is recorded as context held by the teacher
(the student neither serves nor is asked). Everything else on the clients is the original.
The ``anthropic`` package is imported only when an Anthropic client is wrapped: it stays an
optional extra.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shadowtutor.backends import Answer, StreamClock
from shadowtutor.collect import anthropic_shape, request_ids, responses_shape
from shadowtutor.collect.job import Call, Context
from shadowtutor.collect.openai_shape import ChatRequest, answer_of
from shadowtutor.collect.path import AsyncRequestPath, Front, RequestPath, SyncRequestPath, timed

# The wrapper's stream classes (TeeStream, AsyncTeeStream, a list served as a stream), passed
# in by collect.wrapper, which imports this module.
Streams = tuple[Any, Any, Any]
HELD_REASON = "context: held by the teacher"
# create() arguments that are the SDK's, not the request's
_SDK_ARGS = ("extra_headers", "extra_query", "extra_body", "timeout")


class _Delegate:
    def __init__(self, target: Any):
        self._target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class _ProtocolCalls(_Delegate, RequestPath):
    """One protocol's ``create``: its side of the request path (sync and async alike)."""

    parse: Callable[[dict[str, Any]], ChatRequest]
    provider = "openai"

    def __init__(self, target: Any, collector: Front, sync_create: Any, streams: Streams):
        _Delegate.__init__(self, target)
        RequestPath.__init__(self, collector)
        self._sync_create = sync_create
        self._tee_cls, self._atee_cls, self._list_cls = streams

    def begin(self, args: tuple[Any, ...], kwargs: dict[str, Any], shadow: Any) -> Call:
        origin = ("create", args, kwargs)
        try:
            body = {k: v for k, v in kwargs.items() if k not in _SDK_ARGS}
            request = type(self).parse(body)
            call = self.collector.begin(request, Context.from_shadow(shadow), origin)
            self.held(call, body)
            return call
        except Exception:  # never into the app: the call goes to the teacher untouched
            return Call(None, origin=origin)

    def held(self, call: Call, body: dict[str, Any]) -> None:
        """Mark a call whose context the teacher holds (Responses only)."""

    def ask_teacher(self, call: Call) -> Any:
        method, args, kwargs = call.origin
        return getattr(self._target, method)(*args, **kwargs)

    def teacher_answer(self, reply: Any) -> dict[str, Any]:
        return {"teacher_obj": reply}

    def background_teacher(self, call: Call) -> Any:
        assert call.request is not None
        body = self.teacher_body(call.request)
        read, provider = self.read, self.provider

        def ask() -> Answer:
            obj, latency = timed(lambda: self._sync_create(**body))
            return answer_of(read(obj), latency, provider)

        return ask

    # what each protocol says
    def teacher_body(self, request: ChatRequest) -> dict[str, Any]:
        raise NotImplementedError

    def read(self, obj: Any) -> dict[str, Any]:
        raise NotImplementedError


class _Messages(_ProtocolCalls):
    parse = staticmethod(anthropic_shape.parse_request)
    provider = "anthropic"

    def teacher_body(self, request: ChatRequest) -> dict[str, Any]:
        return anthropic_shape.teacher_body(request)

    def read(self, obj: Any) -> dict[str, Any]:
        return anthropic_shape.teacher_from_message(obj)

    def student_reply(self, call: Call, result: Answer) -> Any:
        import anthropic
        import pydantic

        if call.stream:
            adapter: Any = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
            events = anthropic_shape.event_dicts(result)
            return self._list_cls([adapter.validate_python(e) for e in events])
        return anthropic.types.Message.model_validate(anthropic_shape.message_dict(result))


class _Responses(_ProtocolCalls):
    parse = staticmethod(responses_shape.parse_request)

    def held(self, call: Call, body: dict[str, Any]) -> None:
        if responses_shape.context_held(body):
            call.metadata["context"] = responses_shape.CONTEXT_HELD
            self.collector.teacher_only(call, HELD_REASON)

    def teacher_body(self, request: ChatRequest) -> dict[str, Any]:
        return responses_shape.teacher_body(request)

    def read(self, obj: Any) -> dict[str, Any]:
        return responses_shape.teacher_from_response(obj)

    def student_reply(self, call: Call, result: Answer) -> Any:
        import pydantic
        from openai.types.responses import Response, ResponseStreamEvent

        assert call.request is not None
        body = call.request.body
        if call.stream:
            adapter: Any = pydantic.TypeAdapter(ResponseStreamEvent)
            events = responses_shape.event_dicts(result, body)
            return self._list_cls([adapter.validate_python(e) for e in events])
        return Response.model_validate(responses_shape.response_dict(result, body))


class _SyncMixin(SyncRequestPath):
    def create(self, *args: Any, shadow: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        calls: Any = self
        call = calls.begin(args, kwargs, shadow)
        return request_ids.tag(self.run(call), call.id)

    def tee(self, call: Call, reply: Any, clock: StreamClock) -> Any:
        calls: Any = self
        return calls._tee_cls(reply, clock, self, call)


class _AsyncMixin(AsyncRequestPath):
    async def create(self, *args: Any, shadow: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        calls: Any = self
        call = calls.begin(args, kwargs, shadow)
        return request_ids.tag(await self.run(call), call.id)

    def tee(self, call: Call, reply: Any, clock: StreamClock) -> Any:
        calls: Any = self
        return calls._atee_cls(reply, clock, self, call)


class ShadowMessages(_Messages, _SyncMixin):
    """``client.messages`` of an ``anthropic.Anthropic``: ``create`` and ``stream`` shadowed."""

    def stream(self, *args: Any, shadow: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """``messages.stream(...)``: the SDK's own stream manager over the shadowed
        ``create(stream=True)`` (text_stream, get_final_message as before)."""
        from anthropic.lib.streaming import MessageStreamManager

        if "output_format" in kwargs:  # a parsed stream: the SDK's own helper, unrecorded
            self.collector.unrecorded("messages.stream(output_format=...)")
            return self._target.stream(*args, **kwargs)
        return MessageStreamManager(
            lambda: self.create(*args, shadow=shadow, stream=True, **kwargs),
            output_format=_not_given(),
        )


class AsyncShadowMessages(_Messages, _AsyncMixin):
    """``client.messages`` of an ``anthropic.AsyncAnthropic``."""

    def stream(self, *args: Any, shadow: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        from anthropic.lib.streaming import AsyncMessageStreamManager

        if "output_format" in kwargs:
            self.collector.unrecorded("messages.stream(output_format=...)")
            return self._target.stream(*args, **kwargs)
        return AsyncMessageStreamManager(
            self.create(*args, shadow=shadow, stream=True, **kwargs),
            output_format=_not_given(),
        )


def _not_given() -> Any:
    from anthropic import NOT_GIVEN

    return NOT_GIVEN


class ShadowResponses(_Responses, _SyncMixin):
    """``client.responses`` of an ``openai.OpenAI``: ``create`` shadowed (streamed too)."""


class AsyncShadowResponses(_Responses, _AsyncMixin):
    """``client.responses`` of an ``openai.AsyncOpenAI``."""


class ShadowAnthropic(_Delegate):
    """A wrapped ``anthropic.Anthropic`` / ``AsyncAnthropic``: ``messages.create`` and
    ``messages.stream`` shadowed, the rest the original."""

    def __init__(self, client: Any, collector: Front, streams: Streams):
        import anthropic

        super().__init__(client)
        self.collector = collector
        self._streams = streams
        if isinstance(client, anthropic.AsyncAnthropic):
            sync = anthropic.Anthropic(
                api_key=client.api_key,
                auth_token=client.auth_token,
                base_url=client.base_url,
                timeout=client.timeout,
                max_retries=client.max_retries,
            )
            self.messages: Any = AsyncShadowMessages(
                client.messages, collector, sync.messages.create, streams
            )
        else:
            self.messages = ShadowMessages(
                client.messages, collector, client.messages.create, streams
            )

    @property
    def unwrapped(self) -> Any:
        return self._target

    def with_options(self, *args: Any, **kwargs: Any) -> ShadowAnthropic:
        return ShadowAnthropic(
            self._target.with_options(*args, **kwargs), self.collector, self._streams
        )

    copy = with_options


def wrap_anthropic(client: Any, collector: Front, streams: Streams) -> ShadowAnthropic | None:
    """The wrapped client when ``client`` is an Anthropic one, else None (the ``anthropic``
    package is looked at only when the app has imported it)."""
    import sys

    anthropic = sys.modules.get("anthropic")
    if anthropic is None or not isinstance(client, anthropic.Anthropic | anthropic.AsyncAnthropic):
        return None
    return ShadowAnthropic(client, collector, streams)


def shadow_responses(client: Any, collector: Front, sync_client: Any, streams: Streams) -> Any:
    """``client.responses`` with ``create`` shadowed (``sync_client``: the sync OpenAI client
    for background teacher calls)."""
    import openai

    target = client.responses
    create = sync_client.responses.create
    if isinstance(client, openai.AsyncOpenAI):
        return AsyncShadowResponses(target, collector, create, streams)
    return ShadowResponses(target, collector, create, streams)

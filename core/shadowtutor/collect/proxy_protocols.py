"""The proxy's routes for the APIs besides chat: Anthropic's ``POST /v1/messages`` and OpenAI's
``POST /v1/responses``, each the proxy's side of the one request path
(:mod:`shadowtutor.collect.path`) with its own shapes.

* **Messages** goes to the Anthropic upstream (``SHADOWTUTOR_ANTHROPIC_BASE_URL``; the caller's
  ``x-api-key`` or ``authorization`` is forwarded, else the configured key; ``anthropic-version``
  and ``anthropic-beta`` forwarded as sent). The teacher's bytes come back unchanged: a message,
  its SSE events as they arrive, or its error (a 529 ``overloaded_error`` included); an
  unreachable upstream is a 502 in Anthropic's error shape.
* **Responses** goes to the OpenAI teacher (``SHADOWTUTOR_TEACHER_BASE_URL``) the same way. A
  request that continues a stored response (``previous_response_id``) is recorded with
  ``metadata.context = "held by the teacher"``: the teacher serves it at every stage and the
  student is not asked (its context would be partial).

The request is read into the chat form (:mod:`shadowtutor.collect.anthropic_shape`,
:mod:`shadowtutor.collect.responses_shape`) for routing (by kind, as chat), the student and
the record (``protocol`` ``anthropic.messages`` / ``openai.responses``). Routed to the
student after a GO for its kind, the student's answer goes back in the caller's shape (a
message or a response, or their event streams).

:class:`Protocols` makes both from the proxy and registers them (a few lines in
:mod:`shadowtutor.collect.proxy`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from shadowtutor import fastjson
from shadowtutor.backends import Answer, StreamClock
from shadowtutor.collect import anthropic_shape, forward, request_ids, responses_shape
from shadowtutor.collect.job import Call, Context
from shadowtutor.collect.openai_shape import ChatRequest, answer_of
from shadowtutor.collect.path import AsyncRequestPath, Front, timed
from shadowtutor.collect.upstream import Upstream, usable

HELD_REASON = "context: held by the teacher"


@dataclass(frozen=True)
class Spec:
    """What differs between the protocols: where the teacher is, how requests and answers
    look."""

    protocol: str
    path: str  # the proxy's route
    parse: Callable[[dict[str, Any]], ChatRequest]
    teacher_body: Callable[[ChatRequest], dict[str, Any]]
    read: Callable[[Any], dict[str, Any]]  # a complete JSON answer -> answer fields
    stream_ended: Callable[[bytes], bool]
    student_json: Callable[[Answer, dict[str, Any]], dict[str, Any]]
    student_sse: Callable[[Answer, dict[str, Any]], bytes]
    unreachable: Callable[[str, Exception], Response]
    provider: str  # the teacher's, for a background call's answer


def _anthropic_unreachable(where: str, exc: Exception) -> Response:
    message = f"shadowtutor proxy: the teacher at {where} is unreachable ({exc!r})"
    return JSONResponse(anthropic_shape.error_body("api_error", message), status_code=502)


MESSAGES = Spec(
    protocol=anthropic_shape.PROTOCOL,
    path="/v1/messages",
    parse=anthropic_shape.parse_request,
    teacher_body=anthropic_shape.teacher_body,
    read=anthropic_shape.teacher_from_message,
    stream_ended=anthropic_shape.stream_ended,
    student_json=lambda result, body: anthropic_shape.message_dict(result),
    student_sse=lambda result, body: anthropic_shape.sse_body(result),
    unreachable=_anthropic_unreachable,
    provider="anthropic",
)
RESPONSES = Spec(
    protocol=responses_shape.PROTOCOL,
    path="/v1/responses",
    parse=responses_shape.parse_request,
    teacher_body=responses_shape.teacher_body,
    read=responses_shape.teacher_from_response,
    stream_ended=responses_shape.stream_ended,
    student_json=responses_shape.response_dict,
    student_sse=responses_shape.sse_body,
    unreachable=forward.unreachable,
    provider="openai",
)


class Failed(Exception):
    """The teacher's error (or unreachable): ``response`` goes back unchanged."""

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


class ProtocolRoute(AsyncRequestPath):
    """One protocol's route: its side of the request path (see the module docstring)."""

    def __init__(
        self,
        spec: Spec,
        collector: Front,
        *,
        base_url: str,
        prefix: str,
        headers: Callable[[Request], dict[str, str]],
        http: Callable[[], httpx.AsyncClient | None],
        context: Callable[[Request], Context],
    ):
        super().__init__(collector)
        self.spec = spec
        self.base_url = base_url.rstrip("/")
        self.prefix = prefix  # the teacher's path of the route, below base_url
        self.headers = headers
        self._http = http
        self._context = context
        self.upstream: Upstream | None = None

    @property
    def url(self) -> str:
        return self.base_url + self.prefix

    async def aclose(self) -> None:
        if self.upstream is not None:
            await self.upstream.aclose()
            self.upstream = None

    def route(self) -> Route:
        return Route(self.spec.path, self.handle, methods=["POST"])

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        origin = (request, raw)
        try:
            body = fastjson.loads(raw)
            parsed = self.spec.parse(body)
        except Exception:  # not ours to judge: the teacher answers it as it always would
            call = Call(None, origin=origin)
        else:
            call = self.collector.begin(parsed, self._context(request), origin)
            if self.spec is RESPONSES and responses_shape.context_held(body):
                call.metadata["context"] = responses_shape.CONTEXT_HELD
                self.collector.teacher_only(call, HELD_REASON)
        try:
            response: Response = await self.run(call)
        except Failed as failed:
            response = failed.response
        response.headers[request_ids.HEADER] = call.id
        return response

    # --- the request path's I/O and shapes ------------------------------------------------------
    async def ask_teacher(self, call: Call) -> tuple[Any, bytes | None]:
        request, raw = call.origin
        headers = self.headers(request)
        headers["accept-encoding"] = "identity"  # the answer is read for the record
        try:
            if self.upstream is None and usable(self.base_url):
                self.upstream = Upstream(self.base_url)
            if self.upstream is not None:
                upstream: Any = await self.upstream.post(self.prefix, raw, headers)
            else:
                http = self._http()
                assert http is not None
                built = http.build_request("POST", self.url, content=raw, headers=headers)
                upstream = await http.send(built, stream=True)
        except httpx.HTTPError as exc:
            raise Failed(self.spec.unreachable(self.base_url, exc)) from exc
        if upstream.status_code < 400 and call.stream:
            return upstream, None
        try:
            content = b"".join([part async for part in upstream.aiter_raw()])
        finally:
            await upstream.aclose()
        if upstream.status_code >= 400:
            out = forward.response_headers(upstream)
            raise Failed(Response(content, upstream.status_code, out))
        return upstream, content

    def teacher_reply(self, call: Call, reply: tuple[Any, bytes | None]) -> Response:
        upstream, content = reply
        headers = forward.response_headers(upstream)
        if content is None:
            return StreamingResponse(self._pass(upstream), upstream.status_code, headers)
        return Response(content, upstream.status_code, headers)

    def teacher_reply_then(
        self, call: Call, reply: tuple[Any, bytes | None], hand_off: Callable[[], None]
    ) -> Response:
        async def after_sent() -> None:
            hand_off()

        response = self.teacher_reply(call, reply)
        response.background = BackgroundTask(after_sent)
        return response

    async def _pass(self, upstream: Any) -> AsyncIterator[bytes]:
        try:
            async for data in upstream.aiter_raw():
                yield data
        except Exception:
            self.collector.teacher_failed()
            raise
        finally:
            await upstream.aclose()

    def teacher_answer(self, reply: tuple[Any, bytes | None]) -> dict[str, Any]:
        return {"teacher_raw": reply[1]}

    def tee(self, call: Call, reply: tuple[Any, bytes | None], clock: StreamClock) -> Response:
        upstream = reply[0]
        return StreamingResponse(
            self._tee(call, upstream, clock),
            status_code=upstream.status_code,
            headers=forward.response_headers(upstream),
        )

    async def _tee(self, call: Call, upstream: Any, clock: StreamClock) -> AsyncIterator[bytes]:
        parts: list[bytes] = []
        done_at = None
        failed = False
        ended = self.spec.stream_ended
        try:
            async for data in upstream.aiter_raw():
                clock.tick()
                parts.append(data)
                if done_at is None and (ended(data) or ended(b"".join(parts[-2:]))):
                    done_at = time.perf_counter()
                yield data
            done_at = done_at or time.perf_counter()
        except Exception as exc:
            failed = True
            self.stream_failed(exc)
            raise
        finally:
            # an app that hangs up right after the last event still gave a complete answer
            if done_at is not None and not failed:
                self.stream_done(
                    call, clock, done_at, teacher_raw=b"".join(parts), teacher_sse=True
                )
            elif not failed:
                self.stream_failed(None)
            await upstream.aclose()

    def student_reply(self, call: Call, result: Answer) -> Response:
        assert call.request is not None
        body = call.request.body
        if call.stream:
            return Response(self.spec.student_sse(result, body), media_type="text/event-stream")
        return JSONResponse(self.spec.student_json(result, body))

    def background_teacher(self, call: Call) -> Callable[[], Answer]:
        assert call.request is not None
        headers = self.headers(call.origin[0])
        payload = self.spec.teacher_body(call.request)
        url, read, provider = self.url, self.spec.read, self.spec.provider

        def post() -> Any:
            resp = httpx.post(url, json=payload, headers=headers, timeout=120.0)
            resp.raise_for_status()
            return resp.json()

        def ask() -> Answer:
            obj, latency = timed(post)
            return answer_of(read(obj), latency, provider)

        return ask


class Protocols:
    """The Messages and Responses routes of one proxy (``proxy``: its collector, its
    upstreams, its httpx client); ``context`` reads the shadow headers."""

    def __init__(self, proxy: Any, context: Callable[[Request], Context]):
        up: forward.Upstreams = proxy.upstreams
        http = lambda: proxy.http  # noqa: E731 (made in the proxy's lifespan)
        teacher = up.openai_url
        root, prefix = (
            (teacher[:-3], "/v1/responses")
            if teacher.endswith("/v1")
            else (
                teacher,
                "/responses",
            )
        )
        self.messages = ProtocolRoute(
            MESSAGES,
            proxy.collector,
            base_url=up.anthropic_url,
            prefix="/v1/messages",
            headers=up.anthropic_headers,
            http=http,
            context=context,
        )
        self.responses = ProtocolRoute(
            RESPONSES,
            proxy.collector,
            base_url=root,
            prefix=prefix,
            headers=up.openai_headers,
            http=http,
            context=context,
        )

    def routes(self) -> list[Route]:
        return [self.messages.route(), self.responses.route()]

    def fast(self) -> dict[str, Callable[[Request], Any]]:
        """The POST paths the proxy's front sends straight to their handler (no router)."""
        return {self.messages.spec.path: self.messages.handle}

    async def aclose(self) -> None:
        await self.messages.aclose()
        await self.responses.aclose()

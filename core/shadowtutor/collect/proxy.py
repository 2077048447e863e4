"""An OpenAI-compatible HTTP proxy that shadows every chat call (``shadowtutor proxy``).

Point any app's OpenAI ``base_url`` at ``http://HOST:PORT/v1``. Endpoints:

* ``POST /v1/chat/completions`` — forwarded byte for byte to the teacher
  (``SHADOWTUTOR_TEACHER_BASE_URL``); the teacher's status, body and streamed events come back
  unchanged, errors included. The answer is handed to the :class:`ShadowCollector` only after
  it has been sent (for streams, after the last event).
* every other path and method (``/v1/embeddings``, ``/v1/models``, ``/v1/models/{id}``, any
  unknown path) — forwarded to the teacher unchanged and unshadowed, counted by path
  (:mod:`shadowtutor.collect.forward`).
* ``POST /v1/feedback`` — users' feedback on an answer, by the ``X-ShadowTutor-Request-Id``
  every answer carries (:mod:`shadowtutor.collect.feedback_http`).
* ``GET /healthz`` — ``{"status": "ok", "collector": stats()}``.
* ``GET /metrics`` — Prometheus text format (:mod:`shadowtutor.collect.metrics`).

Authorization: the caller's ``Authorization`` header is forwarded when present, else the
configured teacher key (``SHADOWTUTOR_TEACHER_API_KEY``, else ``OPENAI_API_KEY``).

Shadow context comes from optional headers, removed before forwarding: ``X-ShadowTutor-User``,
``X-ShadowTutor-Conversation``, ``X-ShadowTutor-Category``, ``X-ShadowTutor-Language`` and
``X-ShadowTutor-Metadata`` (a JSON object); without a user header the body's ``user`` is used.
Routing is asked per request (:func:`shadowtutor.gate.routing.route`), as in the wrapper: the
proxy is the Starlette side of the one request path (:mod:`shadowtutor.collect.path`), which
decides, serves (the teacher, or the student with fallback to the teacher) and hands off.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from shadowtutor import fastjson
from shadowtutor.backends import Answer, StreamClock, teacher_api_key
from shadowtutor.collect import feedback_http, forward, metrics, proxy_protocols, request_ids
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.collect.job import Call, Context
from shadowtutor.collect.openai_shape import (
    ChatRequest,
    completion_dict,
    result_from_completion,
    sse_body,
)
from shadowtutor.collect.path import AsyncRequestPath, timed
from shadowtutor.collect.upstream import Upstream, usable
from shadowtutor.config import Settings

DEFAULT_TEACHER = "https://api.openai.com/v1"
# Hop-by-hop and length headers are the proxy's own business, never forwarded.
_DROP = {
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "accept-encoding",
    "content-encoding",
}
_SHADOW_PREFIX = "x-shadowtutor-"


def _forward_headers(request: Request, api_key: str) -> dict[str, str]:
    headers = {
        k: v
        for k, v in request.headers.items()
        if k.lower() not in _DROP and not k.lower().startswith(_SHADOW_PREFIX)
    }
    if "authorization" not in {k.lower() for k in headers} and api_key:
        headers["authorization"] = f"Bearer {api_key}"
    headers["accept-encoding"] = "identity"  # raw bytes pass through and can be parsed later
    return headers


def _response_headers(resp: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in resp.headers.items() if k.lower() not in _DROP}


# The server's own `date` and `server` headers are off (see serve()): a forwarded answer
# carries the teacher's, each once; an answer the proxy makes itself gets these.
UVICORN_OPTIONS: dict[str, Any] = {"server_header": False, "date_header": False}
SERVER_NAME = "shadowtutor-proxy"


def _with_origin(send: Any) -> Any:
    """``send`` that gives a response without ``date`` / ``server`` (a student's answer, an
    error, ``/healthz``) the proxy's; a teacher's answer keeps the teacher's. Run the app with
    ``UVICORN_OPTIONS`` (``--no-server-header --no-date-header``) so uvicorn adds none."""

    async def send_with_origin(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {k.lower() for k, _ in headers}
            if b"date" not in names:
                headers.append((b"date", formatdate(usegmt=True).encode()))
            if b"server" not in names:
                headers.append((b"server", SERVER_NAME.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return send_with_origin


class _Front:
    """The proxy's ASGI entry. ``POST /v1/chat/completions``, the hot path, goes straight to
    its handler: no router, no exception middleware (their layers cost about 0.1 ms of CPU a
    request on a 2-vCPU VM); an unexpected error is a 500, as Starlette's would be, and is
    raised for the server to log. Everything else (other paths, lifespan) goes through the
    Starlette app. Every response gets the origin headers (:func:`_with_origin`)."""

    def __init__(
        self,
        chat: Callable[[Request], Any],
        app: Starlette,
        fast: dict[str, Callable[[Request], Any]] | None = None,
    ):
        self.chat = chat
        self.app = app
        self.fast = {"/v1/chat/completions": chat} | (fast or {})  # POST path -> handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_origin(send)
        handler = self.fast.get(scope["path"])
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)  # the same routes, the same handlers
            return
        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            response = await handler(Request(scope, receive))
            await response(scope, receive, tracked)
        except Exception:
            if not started:
                await PlainTextResponse("Internal Server Error", 500)(scope, receive, send)
            raise


TICK_S = 1.0  # uvicorn's housekeeping tick (see QuietServer)


class QuietServer(uvicorn.Server):
    """uvicorn's server with a slower housekeeping tick: its 10 wake-ups a second (for a date
    header the proxy does not send) were half of an idle proxy's CPU. A stop signal is seen
    within ``TICK_S``."""

    async def main_loop(self) -> None:
        while not await self.on_tick(0):  # counter 0: the once-a-second work, every tick
            await asyncio.sleep(TICK_S)


class TeacherFailed(Exception):
    """The teacher's answer is an error (or it is unreachable): ``response`` goes back to the
    app unchanged (a 502 naming the teacher when unreachable)."""

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


class Proxy(AsyncRequestPath):
    """The proxy's state (settings, the teacher connection pool, the collector) and its side
    of the request path: the teacher over HTTP, answers as HTTP responses."""

    collector: ShadowCollector

    def __init__(self, settings: Settings, collector: ShadowCollector | None = None):
        super().__init__(collector or ShadowCollector(settings))
        self.settings = settings
        self.teacher_url = (settings.teacher_base_url or DEFAULT_TEACHER).rstrip("/")
        self.api_key = teacher_api_key(settings)
        self.http: httpx.AsyncClient | None = None
        self.upstream: Upstream | None = None
        anthropic_key = settings.anthropic_api_key or os.environ.get("ANTHROPIC_API_KEY", "")
        self.upstreams = forward.Upstreams(
            self.teacher_url, self.api_key, settings.anthropic_base_url, anthropic_key
        )
        self.forwarder = forward.Forwarder(
            self.upstreams, lambda: self.http, self.collector.counters.forwarded
        )
        self.protocols = proxy_protocols.Protocols(self, _context)  # /v1/messages, /v1/responses
        self.feedback = feedback_http.endpoint(self.collector.feedback_desk, settings.feedback_key)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0), limits=limits)
        if usable(self.teacher_url):  # the chat calls' lean client
            self.upstream = Upstream(self.teacher_url)
        try:
            yield
        finally:
            if self.upstream is not None:
                await self.upstream.aclose()
            await self.protocols.aclose()
            await self.http.aclose()
            await asyncio.to_thread(self.collector.close)

    def app(self) -> _Front:
        routes = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/healthz", self.health, methods=["GET"]),
                Route("/metrics", metrics.endpoint(self.collector), methods=["GET"]),
                Route(feedback_http.PATH, self.feedback, methods=["POST"]),
                *self.protocols.routes(),
                # last: whatever no route above takes goes to the teacher, unshadowed
                Route("/{path:path}", self.forwarder.forward, methods=forward.METHODS),
            ],
            lifespan=self.lifespan,
        )
        return _Front(
            self.chat, routes, self.protocols.fast() | {feedback_http.PATH: self.feedback}
        )

    # --- endpoints -------------------------------------------------------------------------------
    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "ok", "teacher": self.teacher_url, "collector": self.collector.stats()}
        )

    async def chat(self, request: Request) -> Response:
        raw = await request.body()
        origin = (request, raw)
        try:
            body = fastjson.loads(raw)  # once, for routing and sampling; the bytes go on as sent
            chat = ChatRequest.parse(body)
        except Exception:
            # Not ours to judge: the teacher answers malformed requests as it always would.
            call = Call(None, origin=origin)
        else:
            call = self.collector.begin(chat, _context(request), origin)
        try:
            response: Response = await self.run(call)  # the path returns what the front builds
        except TeacherFailed as failed:
            response = failed.response
        response.headers[request_ids.HEADER] = call.id
        return response

    # --- the request path's I/O and shapes ------------------------------------------------------
    async def ask_teacher(self, call: Call) -> tuple[httpx.Response, bytes | None]:
        """The teacher's response: read whole (content), or for a stream open (None): its
        events pass through as they come, teed when shadowed."""
        assert self.http is not None
        request, raw = call.origin
        url = f"{self.teacher_url}/chat/completions"
        headers = _forward_headers(request, self.api_key)
        try:
            if self.upstream is not None:
                upstream: Any = await self.upstream.post("/chat/completions", raw, headers)
            else:
                upstream = await self.http.send(
                    self.http.build_request("POST", url, content=raw, headers=headers),
                    stream=True,
                )
        except httpx.HTTPError as exc:
            raise TeacherFailed(_unreachable(self.teacher_url, exc)) from exc
        if upstream.status_code < 400 and call.stream:
            return upstream, None
        try:
            content = await upstream.aread()
        finally:
            await upstream.aclose()
        if upstream.status_code >= 400:
            headers = _response_headers(upstream)
            raise TeacherFailed(Response(content, upstream.status_code, headers))
        return upstream, content

    def teacher_reply(self, call: Call, reply: tuple[httpx.Response, bytes | None]) -> Response:
        upstream, content = reply
        if content is None:  # an unshadowed stream: straight through, nothing kept
            return StreamingResponse(
                self._pass(upstream),
                status_code=upstream.status_code,
                headers=_response_headers(upstream),
            )
        return Response(content, upstream.status_code, _response_headers(upstream))

    def teacher_reply_then(
        self, call: Call, reply: tuple[httpx.Response, bytes | None], hand_off: Callable[[], None]
    ) -> Response:
        async def after_sent() -> None:  # async: no thread pool hop for a ~20 µs hand-off
            hand_off()

        response = self.teacher_reply(call, reply)
        response.background = BackgroundTask(after_sent)
        return response

    async def _pass(self, upstream: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for data in upstream.aiter_raw():
                yield data
        except Exception:
            self.collector.teacher_failed()  # the caller sees the cut connection
            raise
        finally:
            await upstream.aclose()

    def teacher_answer(self, reply: tuple[httpx.Response, bytes | None]) -> dict[str, Any]:
        return {"teacher_raw": reply[1]}  # put_nowait: as cheap as scheduling a background task

    def tee(
        self, call: Call, reply: tuple[httpx.Response, bytes | None], clock: StreamClock
    ) -> Response:
        upstream = reply[0]
        return StreamingResponse(
            self._tee(call, upstream, clock),
            status_code=upstream.status_code,
            headers=_response_headers(upstream),
        )

    async def _tee(
        self, call: Call, upstream: httpx.Response, clock: StreamClock
    ) -> AsyncIterator[bytes]:
        parts: list[bytes] = []
        done_at = None
        failed = False
        try:
            async for data in upstream.aiter_raw():
                clock.tick()
                parts.append(data)
                if b"[DONE]" in data or b"[DONE]" in b"".join(parts[-2:]):
                    done_at = time.perf_counter()
                yield data
            done_at = done_at or time.perf_counter()
        except Exception as exc:
            failed = True
            self.stream_failed(exc)  # the caller sees the cut connection
            raise
        finally:
            # An app that hangs up right after `data: [DONE]` cancels this generator; the
            # answer is complete all the same, so it is still handed to the collector.
            if done_at is not None and not failed:
                self.stream_done(
                    call, clock, done_at, teacher_raw=b"".join(parts), teacher_sse=True
                )
            elif not failed:
                self.stream_failed(None)
            await upstream.aclose()

    def student_reply(self, call: Call, result: Answer) -> Response:
        assert call.request is not None
        if call.stream:
            body = sse_body(result, include_usage=call.request.include_usage)
            return Response(body, media_type="text/event-stream")
        return JSONResponse(completion_dict(result))

    def background_teacher(self, call: Call) -> Callable[[], Answer]:
        assert call.request is not None
        headers = _forward_headers(call.origin[0], self.api_key)
        payload = call.request.teacher_body()
        url = f"{self.teacher_url}/chat/completions"

        def post() -> Any:
            resp = httpx.post(url, json=payload, headers=headers, timeout=120.0)
            resp.raise_for_status()
            return resp.json()

        def ask() -> Answer:
            return result_from_completion(*timed(post))

        return ask


def _context(request: Request) -> Context:
    """The shadow context from the ``X-ShadowTutor-*`` headers (user: else the body's)."""
    h = request.headers
    meta: dict[str, Any] = {}
    if h.get("x-shadowtutor-metadata"):
        try:
            parsed = json.loads(h["x-shadowtutor-metadata"])
            meta = parsed if isinstance(parsed, dict) else {"value": parsed}
        except json.JSONDecodeError:
            meta = {"metadata_header_invalid": h["x-shadowtutor-metadata"][:200]}
    return Context(
        user=h.get("x-shadowtutor-user"),
        conversation_id=h.get("x-shadowtutor-conversation"),
        category=h.get("x-shadowtutor-category"),
        language=h.get("x-shadowtutor-language"),
        metadata=meta,
    )


def _unreachable(url: str, exc: Exception) -> JSONResponse:
    # The shape an OpenAI client understands; 502 like any gateway whose upstream failed.
    return JSONResponse(
        {
            "error": {
                "message": f"shadowtutor proxy: the teacher at {url} is unreachable ({exc!r})",
                "type": "upstream_error",
                "code": "teacher_unreachable",
            }
        },
        status_code=502,
    )


def create_app(
    settings: Settings | None = None, collector: ShadowCollector | None = None
) -> _Front:
    """The proxy's ASGI app (``shadowtutor proxy``, or uvicorn with ``--no-server-header
    --no-date-header``, else uvicorn adds its own ``date`` and ``server`` to the teacher's)."""
    return Proxy(settings or Settings.load(), collector).app()


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Run the proxy until interrupted; the collector is flushed on shutdown.

    The shadow work runs in a companion process (forwarding never waits behind it) unless
    ``SHADOWTUTOR_COMPANION=0`` says otherwise."""
    if os.environ.get("SHADOWTUTOR_COMPANION") is None:
        settings = dataclasses.replace(settings, companion=True)
    config = uvicorn.Config(
        create_app(settings),
        host=host or settings.proxy_host,
        port=port or settings.proxy_port,
        log_level="warning",
        **UVICORN_OPTIONS,
        proxy_headers=False,  # X-Forwarded-* are not read here; no middleware to rewrite them
        access_log=False,
        timeout_keep_alive=math.ceil(
            settings.proxy_keep_alive_s
        ),  # idle connections are closed (whole seconds)
    )
    QuietServer(config).run()

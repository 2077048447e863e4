"""An OpenAI-compatible HTTP proxy that shadows every chat call (``shadowtutor proxy``).

Point any app's OpenAI ``base_url`` at ``http://HOST:PORT/v1``. Endpoints:

* ``POST /v1/chat/completions`` — forwarded byte for byte to the teacher
  (``SHADOWTUTOR_TEACHER_BASE_URL``); the teacher's status, body and streamed events come back
  unchanged, errors included. The answer is handed to the :class:`ShadowCollector` only after
  it has been sent (for streams, after the last event).
* ``GET /v1/models`` — the teacher's model list, forwarded.
* ``GET /healthz`` — ``{"status": "ok", "collector": stats()}``.
* ``GET /metrics`` — Prometheus text format (:mod:`shadowtutor.collect.metrics`).

Authorization: the caller's ``Authorization`` header is forwarded when present, else the
configured teacher key (``SHADOWTUTOR_TEACHER_API_KEY``, else ``OPENAI_API_KEY``).

Shadow context comes from optional headers, removed before forwarding: ``X-ShadowTutor-User``,
``X-ShadowTutor-Conversation``, ``X-ShadowTutor-Category``, ``X-ShadowTutor-Language`` and
``X-ShadowTutor-Metadata`` (a JSON object); without a user header the body's ``user`` is used.
Routing is asked per request (:func:`shadowtutor.gate.routing.route`), as in the wrapper.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from shadowtutor.backends.clients import ChatResult, teacher_api_key
from shadowtutor.collect import metrics
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.collect.job import Job, error_text
from shadowtutor.collect.wrapper import chunk_dicts, completion_dict, result_from_completion
from shadowtutor.config import Settings
from shadowtutor.gate import routing
from shadowtutor.log import record as logrecord

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


class Proxy:
    """The proxy's state: settings, the teacher connection pool and the collector."""

    def __init__(self, settings: Settings, collector: ShadowCollector | None = None):
        self.settings = settings
        self.teacher_url = (settings.teacher_base_url or DEFAULT_TEACHER).rstrip("/")
        self.api_key = teacher_api_key(settings)
        self.collector = collector or ShadowCollector(settings)
        self.http: httpx.AsyncClient | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0), limits=limits)
        try:
            yield
        finally:
            await self.http.aclose()
            await asyncio.to_thread(self.collector.close)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/healthz", self.health, methods=["GET"]),
                Route("/metrics", metrics.endpoint(self.collector), methods=["GET"]),
            ],
            lifespan=self.lifespan,
        )

    # --- endpoints -------------------------------------------------------------------------------
    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "ok", "teacher": self.teacher_url, "collector": self.collector.stats()}
        )

    async def models(self, request: Request) -> Response:
        assert self.http is not None
        try:
            resp = await self.http.get(
                f"{self.teacher_url}/models", headers=_forward_headers(request, self.api_key)
            )
        except httpx.HTTPError as exc:
            return _unreachable(self.teacher_url, exc)
        return Response(resp.content, resp.status_code, _response_headers(resp))

    async def chat(self, request: Request) -> Response:
        assert self.http is not None
        raw = await request.body()
        try:
            body = json.loads(raw)
            messages = body["messages"]
            assert isinstance(messages, list)
        except Exception:
            # Not ours to judge: the teacher answers malformed requests as it always would.
            return await self._forward(request, raw, None)
        ctx = _context(request, body)
        route, shadowed, category = self.collector.decide(
            messages,
            user=ctx["user"],
            conversation_id=ctx["conversation_id"],
            category=ctx["category"],
        )
        job = None
        if shadowed:
            job = Job(
                messages=messages,
                user_hash=logrecord.pseudonymize(ctx["user"]),
                conversation_id=ctx["conversation_id"],
                category=category,
                category_detected=ctx["category"] is None,
                language=ctx["language"],
                metadata=ctx["metadata"] | {"teacher_model": body.get("model")},
                route=route,
                options={
                    "temperature": body.get("temperature"),
                    "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens"),
                },
            )
        if route.served_by == "student":
            served = await self._serve_student(request, body, route, job)
            if served is not None:
                return served
            if job is not None:
                job.route = routing.Route("teacher", route.stage, route.bucket, route.eligible)
        return await self._forward(request, raw, job, stream=bool(body.get("stream")))

    # --- teacher ---------------------------------------------------------------------------------
    async def _forward(
        self, request: Request, raw: bytes, job: Job | None, *, stream: bool = False
    ) -> Response:
        assert self.http is not None
        url = f"{self.teacher_url}/chat/completions"
        headers = _forward_headers(request, self.api_key)
        start = time.perf_counter()
        try:
            upstream = await self.http.send(
                self.http.build_request("POST", url, content=raw, headers=headers), stream=True
            )
        except httpx.HTTPError as exc:
            self.collector.count("teacher_errors")
            return _unreachable(self.teacher_url, exc)
        if upstream.status_code >= 400 or job is None or not stream:
            try:
                content = await upstream.aread()
            finally:
                await upstream.aclose()
            latency = (time.perf_counter() - start) * 1000
            if upstream.status_code >= 400:
                self.collector.count("teacher_errors")
            elif job is not None:  # put_nowait: as cheap as scheduling a background task
                job.teacher_raw, job.teacher_latency_ms = content, latency
                self.collector.submit(job)
            return Response(content, upstream.status_code, _response_headers(upstream))
        return StreamingResponse(
            self._tee(upstream, job, start),
            status_code=upstream.status_code,
            headers=_response_headers(upstream),
        )

    async def _tee(self, upstream: httpx.Response, job: Job, start: float) -> AsyncIterator[bytes]:
        parts: list[bytes] = []
        first = None
        done_at = None
        failed = False
        try:
            async for data in upstream.aiter_raw():
                if first is None:
                    first = time.perf_counter()
                parts.append(data)
                if b"[DONE]" in data or b"[DONE]" in b"".join(parts[-2:]):
                    done_at = time.perf_counter()
                yield data
            done_at = done_at or time.perf_counter()
        except Exception:
            failed = True
            self.collector.count("teacher_errors")  # the caller sees the cut connection
            raise
        finally:
            # An app that hangs up right after `data: [DONE]` cancels this generator; the
            # answer is complete all the same, so it is still handed to the collector.
            if done_at is not None and not failed:
                job.teacher_raw, job.teacher_sse = b"".join(parts), True
                job.teacher_latency_ms = (done_at - start) * 1000
                job.teacher_ttft_ms = None if first is None else (first - start) * 1000
                self.collector.submit(job)
            elif not failed:
                self.collector.count("streams_abandoned")
            await upstream.aclose()

    # --- student serving -------------------------------------------------------------------------
    async def _serve_student(
        self, request: Request, body: dict[str, Any], route: routing.Route, job: Job | None
    ) -> Response | None:
        c = self.collector
        if not c.breaker.allow():
            return None
        try:
            result: ChatResult = await asyncio.to_thread(
                c.student.chat,
                body["messages"],
                temperature=body.get("temperature"),
                max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            )
        except Exception as exc:
            c.breaker.failure()
            c.count("student_fallbacks")
            c.last_error = f"student (serving): {exc}"
            if job is not None:
                job.student_error = error_text(exc)
                job.metadata["fallback"] = job.student_error
            return None
        c.breaker.success()
        c.count("served_by_student")
        if job is not None:
            job.student_result = result
            job.teacher_call = self._background_teacher(request, body)
            c.submit(job)
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            events = b"".join(
                b"data: " + json.dumps(c).encode() + b"\n\n"
                for c in chunk_dicts(result, include_usage=include)
            )
            return Response(events + b"data: [DONE]\n\n", media_type="text/event-stream")
        return JSONResponse(completion_dict(result))

    def _background_teacher(self, request: Request, body: dict[str, Any]) -> Any:
        headers = _forward_headers(request, self.api_key)
        payload = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        url = f"{self.teacher_url}/chat/completions"

        def call() -> ChatResult:
            start = time.perf_counter()
            resp = httpx.post(url, json=payload, headers=headers, timeout=120.0)
            resp.raise_for_status()
            return result_from_completion(resp.json(), (time.perf_counter() - start) * 1000)

        return call


def _context(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    h = request.headers
    meta: dict[str, Any] = {}
    if h.get("x-shadowtutor-metadata"):
        try:
            parsed = json.loads(h["x-shadowtutor-metadata"])
            meta = parsed if isinstance(parsed, dict) else {"value": parsed}
        except json.JSONDecodeError:
            meta = {"metadata_header_invalid": h["x-shadowtutor-metadata"][:200]}
    user = h.get("x-shadowtutor-user") or body.get("user") or body.get("safety_identifier")
    return {
        "user": user if isinstance(user, str) else None,
        "conversation_id": h.get("x-shadowtutor-conversation"),
        "category": h.get("x-shadowtutor-category"),
        "language": h.get("x-shadowtutor-language"),
        "metadata": meta,
    }


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
) -> Starlette:
    """The proxy's ASGI app (run it with uvicorn, or ``shadowtutor proxy``)."""
    return Proxy(settings or Settings.load(), collector).app()


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Run the proxy until interrupted; the collector is flushed on shutdown."""
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=host or settings.proxy_host,
        port=port or settings.proxy_port,
        log_level="warning",
    )

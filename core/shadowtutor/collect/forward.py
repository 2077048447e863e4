"""Everything the proxy does not shadow goes to the teacher unchanged (``collect.forward``).

Any path and method the proxy has no handler for (``/v1/embeddings``, ``/v1/completions``,
``/v1/models/{id}``, ``/v1/files``, ``/v1/messages/count_tokens``, a path nobody knows yet)
is sent to the teacher as it came: method, query string, body bytes, headers (minus the
hop-by-hop ones and ``X-ShadowTutor-*``), and the teacher's status, headers and body come back
as they are, a stream passed on as it arrives. Nothing is recorded; each request is counted by
its path (:func:`path_label`: ids become ``{id}``), in ``stats()["forwarded_by_path"]`` and the
``shadowtutor_forwarded_total{path}`` metric. The proxy never answers its own 404 where the
teacher would answer.

Which teacher: a request that carries Anthropic's ``anthropic-version`` header (every
Anthropic SDK sends it) goes to the Anthropic upstream (``SHADOWTUTOR_ANTHROPIC_BASE_URL``, the
path kept whole: ``/v1/messages/count_tokens``); any other goes to the OpenAI-compatible
teacher (``SHADOWTUTOR_TEACHER_BASE_URL``), whose base URL stands for the proxy's ``/v1``:
``/v1/embeddings`` goes to ``{teacher}/embeddings``, a path outside ``/v1`` to the same path
beside it. A caller without its own key gets the configured one (``Authorization: Bearer``
for OpenAI, ``x-api-key`` for Anthropic).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

# Hop-by-hop headers (RFC 9110 7.6.1) and the length, which is the proxy's own business. The
# content encoding is kept both ways: the bytes pass through as the teacher sent them.
HOP_BY_HOP = {
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
}
SHADOW_PREFIX = "x-shadowtutor-"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_LABELS = 200  # distinct path labels counted; beyond, "other" (a scanner's random paths)
# Path segments that name an action or a sub-collection rather than an object (kept as they are).
_WORDS = {
    "v1",
    "chat",
    "completions",
    "embeddings",
    "models",
    "files",
    "content",
    "cancel",
    "batches",
    "results",
    "messages",
    "count_tokens",
    "responses",
    "input_items",
    "moderations",
    "images",
    "generations",
    "edits",
    "variations",
    "audio",
    "speech",
    "transcriptions",
    "translations",
    "fine_tuning",
    "jobs",
    "events",
    "checkpoints",
    "uploads",
    "parts",
    "vector_stores",
    "assistants",
    "threads",
    "runs",
    "steps",
    "conversations",
    "items",
    "realtime",
    "sessions",
    "organization",
    "usage",
    "costs",
    "api",
    "version",
}
_SEGMENT = re.compile(r"[a-z_]{1,40}")


def path_label(path: str) -> str:
    """The path as counted: known words kept, any other segment (a model, a file or response
    id) shown as ``{id}``; ``/v1/models/gpt-4o`` is ``/v1/models/{id}``."""
    parts = [p for p in path.split("/") if p]
    kept = [p if p in _WORDS else "{id}" for p in parts[:6]]
    if len(parts) > 6:
        kept.append("...")
    return "/" + "/".join(kept)


def is_anthropic(request: Request) -> bool:
    """The request speaks Anthropic's API (its SDKs always send ``anthropic-version``)."""
    return "anthropic-version" in request.headers


def request_headers(request: Request) -> dict[str, str]:
    """The caller's headers as the teacher gets them: without hop-by-hop and shadow headers."""
    return {
        k: v
        for k, v in request.headers.items()
        if k.lower() not in HOP_BY_HOP and not k.lower().startswith(SHADOW_PREFIX)
    }


def response_headers(resp: Any) -> dict[str, str]:
    return {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}


class Upstreams:
    """The two teachers one proxy fronts: their base URLs and configured keys."""

    def __init__(self, openai_url: str, openai_key: str, anthropic_url: str, anthropic_key: str):
        self.openai_url = openai_url.rstrip("/")
        self.openai_key = openai_key
        self.anthropic_url = anthropic_url.rstrip("/")
        self.anthropic_key = anthropic_key

    def openai_target(self, path: str) -> str:
        """The OpenAI teacher's URL of a proxy path (its base URL stands for ``/v1``)."""
        if path == "/v1" or path.startswith("/v1/"):
            return self.openai_url + path[3:]
        root = self.openai_url[:-3] if self.openai_url.endswith("/v1") else self.openai_url
        return root + path

    def anthropic_target(self, path: str) -> str:
        return self.anthropic_url + path

    def anthropic_headers(self, request: Request) -> dict[str, str]:
        headers = request_headers(request)
        names = {k.lower() for k in headers}
        if "x-api-key" not in names and "authorization" not in names and self.anthropic_key:
            headers["x-api-key"] = self.anthropic_key
        return headers

    def openai_headers(self, request: Request) -> dict[str, str]:
        headers = request_headers(request)
        if "authorization" not in {k.lower() for k in headers} and self.openai_key:
            headers["authorization"] = f"Bearer {self.openai_key}"
        return headers


class Forwarder:
    """The proxy's catch-all endpoint (see the module docstring). ``http`` gives the proxy's
    httpx client (made at startup); ``count`` counts a forwarded request by its label."""

    def __init__(
        self,
        upstreams: Upstreams,
        http: Callable[[], httpx.AsyncClient | None],
        count: Callable[[str], None],
    ):
        self.upstreams = upstreams
        self._http = http
        self._count = count
        self._labels: set[str] = set()

    def label(self, path: str) -> str:
        found = path_label(path)
        if found not in self._labels:
            if len(self._labels) >= MAX_LABELS:
                return "other"
            self._labels.add(found)
        return found

    async def forward(self, request: Request) -> Response:
        http = self._http()
        assert http is not None, "the proxy's lifespan has not started"
        path = request.url.path
        u = self.upstreams
        if is_anthropic(request):
            url, headers = u.anthropic_target(path), u.anthropic_headers(request)
            where = u.anthropic_url
        else:
            url, headers = u.openai_target(path), u.openai_headers(request)
            where = u.openai_url
        self._count(self.label(path))
        body = await request.body()
        outgoing = http.build_request(
            request.method,
            url,
            params=request.url.query or None,
            content=body if body or request.method not in ("GET", "HEAD") else None,
            headers=headers,
        )
        try:
            upstream = await http.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            return unreachable(where, exc)
        out_headers = response_headers(upstream)
        streamed = "text/event-stream" in upstream.headers.get("content-type", "")
        if streamed or "content-length" not in upstream.headers:
            return StreamingResponse(
                _passed(upstream), status_code=upstream.status_code, headers=out_headers
            )
        try:  # raw: a compressed body stays compressed, its content-encoding kept
            content = b"".join([part async for part in upstream.aiter_raw()])
        finally:
            await upstream.aclose()
        if request.method == "HEAD":
            out_headers["content-length"] = upstream.headers["content-length"]
            return Response(b"", upstream.status_code, out_headers)
        return Response(content, upstream.status_code, out_headers)


async def _passed(upstream: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for data in upstream.aiter_raw():
            yield data
    finally:
        await upstream.aclose()


def unreachable(where: str, exc: Exception) -> JSONResponse:
    """A 502 naming the teacher that could not be reached (OpenAI's error shape)."""
    return JSONResponse(
        {
            "error": {
                "message": f"shadowtutor proxy: the teacher at {where} is unreachable ({exc!r})",
                "type": "upstream_error",
                "code": "teacher_unreachable",
            }
        },
        status_code=502,
    )

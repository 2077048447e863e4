"""The proxy's ``POST /v1/feedback``: an app's users' feedback on answers, by request id.

::

    POST /v1/feedback
    {"request_id": "<X-ShadowTutor-Request-Id of the answer>", "kind": "thumbs", "value": "down",
     "comment": "wrong opening hours"}

``kind``: ``thumbs`` (``up`` / ``down``), ``rating`` (a number; ``scale``, 5 unless given),
``correction`` (``value``: the answer the user wanted), ``flag`` (``value``: the reason),
``regenerate``, ``abandoned``; optional ``comment``, ``event_id`` (an idempotency key),
``user``, ``conversation_id``, ``ts``, ``metadata``. A JSON array (or ``{"events": [...]}``)
sends several at once.

Only trusted callers are heard: with ``SHADOWTUTOR_FEEDBACK_KEY`` set, a caller must send
``Authorization: Bearer <key>`` (or ``X-ShadowTutor-Feedback-Key``); without it, only
loopback callers. Anyone else gets 401 (counted in ``untrusted``).

Answers: 202 ``{"status": "accepted", "id", "matched"}`` once the event is written; 200
``duplicate`` (already taken: kept once); 400 ``malformed`` with the reason; 503
``write_failed`` (not stored: send it again). A batch answers 200 with one result per event
(503 when any could not be written) and the counts. Every outcome is counted
(``/healthz`` ``collector.feedback``, ``/metrics`` ``shadowtutor_feedback_events_total``).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from shadowtutor.collect.feedback import FeedbackDesk

PATH = "/v1/feedback"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_BODY = 4 * 1024 * 1024
_STATUS = {"accepted": 202, "duplicate": 200, "malformed": 400, "write_failed": 503}


def trusted(request: Request, key: str) -> bool:
    """The caller may post feedback (see the module docstring)."""
    if key:
        given = request.headers.get("x-shadowtutor-feedback-key", "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = given or auth[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), key.encode())
    client = request.client
    return client is not None and client.host in LOOPBACK


def endpoint(desk: FeedbackDesk, key: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The handler of ``POST /v1/feedback`` for ``desk``."""

    async def feedback(request: Request) -> JSONResponse:
        if not trusted(request, key):
            desk.untrusted()
            why = "a valid feedback key" if key else "a loopback address (no key is set)"
            return JSONResponse({"error": f"feedback is taken only from {why}"}, 401)
        raw = await request.body()
        events, problem = _events(raw)
        if problem is not None:
            desk.refused(problem)
            return JSONResponse({"status": "malformed", "error": problem}, 400)
        outcomes = desk.take(events)
        if not isinstance(events, _Batch):
            only = outcomes[0]
            return JSONResponse(only.as_dict(), _STATUS[only.status])
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        failed = counts.get("write_failed", 0) > 0
        body = {"results": [o.as_dict() for o in outcomes], "counts": counts}
        return JSONResponse(body, 503 if failed else 200)

    return feedback


class _Batch(list[Any]):
    """Events that came as a batch (answered with one result each)."""


def _events(raw: bytes) -> tuple[list[Any], str | None]:
    if len(raw) > MAX_BODY:
        return [], f"the body is larger than {MAX_BODY} bytes"
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return [], "the body is not JSON"
    if isinstance(body, list):
        return _Batch(body), None if body else "an empty batch"
    if isinstance(body, dict) and isinstance(body.get("events"), list) and len(body) == 1:
        return _Batch(body["events"]), None if body["events"] else "an empty batch"
    return [body], None

"""Every answer's id, as the app sees it: the key its feedback is sent with.

The request path gives each request an id when it begins (:class:`~shadowtutor.collect.job.Call`);
the record of a shadowed request carries it as ``request_id``. The proxy returns it in the
``X-ShadowTutor-Request-Id`` header of every answer (the teacher's and, after a GO, the
student's); the wrapper ties it to the object it returns (a ``ChatCompletion``, a stream, a
``Message``, a ``Response``), read with :func:`request_id`::

    completion = client.chat.completions.create(...)       # a wrapped client
    rid = shadowtutor.request_id(completion)

The tie is kept beside the object (a weak reference), never in it, so the app's object is the
SDK's own: ``model_dump()`` and equality are unchanged.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, TypeVar

HEADER = "X-ShadowTutor-Request-Id"
ATTRIBUTE = "shadowtutor_request_id"  # set on the wrapper's own stream objects

T = TypeVar("T")
_TAGS: dict[int, tuple[weakref.ref[Any], str]] = {}
_LOCK = threading.Lock()


def tag(obj: T, rid: str) -> T:
    """``obj`` tied to the request id ``rid`` (returned unchanged)."""
    if obj is None:
        return obj
    key = id(obj)

    def forget(_ref: Any, key: int = key) -> None:
        with _LOCK:
            entry = _TAGS.get(key)
            if entry is not None and entry[0]() is None:
                del _TAGS[key]

    try:
        ref = weakref.ref(obj, forget)
    except TypeError:  # an object without weak references: only an attribute can carry it
        try:
            setattr(obj, ATTRIBUTE, rid)
        except (AttributeError, TypeError):
            pass
        return obj
    with _LOCK:
        _TAGS[key] = (ref, rid)
    return obj


def request_id(obj: Any) -> str | None:
    """The ShadowTutor request id of an answer: an object a wrapped client returned (sync,
    async or streamed), or an HTTP response from the proxy (``with_raw_response``, an
    ``httpx.Response``, a stream's ``.response``); None when it has none."""
    for held in (obj, getattr(obj, "_raw_stream", None)):  # an SDK stream helper wraps ours
        entry = _TAGS.get(id(held))
        if held is not None and entry is not None and entry[0]() is held:
            return entry[1]
    own = getattr(obj, ATTRIBUTE, None)
    if isinstance(own, str):
        return own
    for holder in (obj, getattr(obj, "response", None), getattr(obj, "http_response", None)):
        headers = getattr(holder, "headers", None)
        if headers is not None and hasattr(headers, "get"):
            found = headers.get(HEADER) or headers.get(HEADER.lower())
            if isinstance(found, str) and found:
                return found
    return None

"""The companion's pipe frames: 4-byte big-endian length, 1-byte kind, payload.

``J`` a job (4-byte length of its JSON fields, the fields, then the teacher's raw proxy bytes
if any), ``F`` a flush (``{"n", "timeout"}``), ``C`` the configuration (first frame). The
child's replies are JSON lines (see :mod:`shadowtutor.collect.executors.companion`).
"""

from __future__ import annotations

import dataclasses
import struct
from datetime import UTC, datetime
from typing import Any

from shadowtutor import fastjson
from shadowtutor.backends import Answer
from shadowtutor.collect.job import Job, route_of, wire_fields

HEAD = struct.Struct(">IB")
LEN = struct.Struct(">I")
JOB, FLUSH, CONFIG = b"J", b"F", b"C"


def default(obj: Any) -> Any:
    """JSON for what the encoder does not know: a pydantic object's fields, a dataclass's,
    bytes as text, else ``str``."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(exclude_none=True)
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)  # type: ignore[arg-type]
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)


def frame(kind: bytes, payload: bytes) -> bytes:
    return HEAD.pack(len(payload) + 1, kind[0]) + payload


def encode_job(job: Job) -> bytes:
    """One ``J`` frame for a job (the request path's only encoding: once, with orjson).

    The teacher's raw proxy bytes go as they are (parsed in the child); a response object or
    stream chunks become answer fields here (attribute reads, no serialisation of the object).
    A job with a background teacher call cannot cross (a closure): ValueError.
    """
    if job.teacher_call is not None:
        raise ValueError("a background teacher call runs in this process")
    teacher = job.teacher
    form = "fields"
    if teacher is None:
        if job.teacher_obj is not None:
            teacher, form = job.teacher_fields(), "obj"
        elif job.teacher_chunks is not None:
            teacher, form = job.teacher_fields(), "chunks"
    result = job.student_result
    fields = wire_fields(job) | {
        "ts": job.ts.timestamp() if job.ts else None,
        "teacher": teacher,
        "form": form,
        "sse": job.teacher_sse,
        "student_result": dataclasses.astuple(result) if result is not None else None,
    }
    body = fastjson.dumps(fields, default=default)
    raw = job.teacher_raw or b""
    return HEAD.pack(len(body) + len(raw) + 5, JOB[0]) + LEN.pack(len(body)) + body + raw


def decode_job(payload: bytes | memoryview) -> tuple[Job, str]:
    """The job of a ``J`` payload, and the form its teacher answer had."""
    (n,) = LEN.unpack_from(payload, 0)
    f = fastjson.loads(payload[4 : 4 + n])
    raw = bytes(payload[4 + n :])
    route = f.get("route")
    result = f.get("student_result")
    job = Job(
        messages=f["messages"],
        source=f.get("source") or "live",
        id=f["id"],
        ts=datetime.fromtimestamp(f["ts"], UTC) if f.get("ts") is not None else None,
        user_hash=f.get("user_hash"),
        category=f.get("category"),
        language=f.get("language"),
        category_detected=bool(f.get("category_detected")),
        metadata=f.get("metadata") or {},
        route=route_of(route),
        options=f.get("options") or {},
        kind=f.get("kind") or "plain",
        protocol=f.get("protocol") or "openai.chat",
        features=dict(f.get("features") or {}),
        teacher=f.get("teacher"),
        teacher_raw=raw if raw else None,
        teacher_sse=bool(f.get("sse")),
        teacher_latency_ms=f.get("teacher_latency_ms"),
        teacher_ttft_ms=f.get("teacher_ttft_ms"),
        student_result=Answer(*result) if result else None,
        student_error=f.get("student_error"),
    )
    job.conversation_id = f.get("conversation_id")  # already pseudonymised by the parent
    return job, f.get("form") or "fields"

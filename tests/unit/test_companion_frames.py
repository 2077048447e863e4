"""The companion's job frames: what the request path encodes is the job the child decodes,
with orjson and with the standard-library fallback (core/shadowtutor/fastjson.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shadowtutor import fastjson
from shadowtutor.backends import Answer
from shadowtutor.collect import frames
from shadowtutor.collect.job import Job
from shadowtutor.gate import routing


@pytest.fixture(params=["orjson", "stdlib"])
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "stdlib":
        monkeypatch.setattr(fastjson, "orjson", None)
    return request.param


def test_a_job_crosses_the_pipe_unchanged(encoder: str) -> None:
    job = Job(
        messages=[{"role": "user", "content": "Ciao, è aperto? 🍰"}],
        id="abc",
        ts=datetime(2026, 12, 2, 6, 0, 0, 123000, tzinfo=UTC),
        user_hash="u1",
        conversation_id="c-7",
        category="business",
        metadata={"prompt_id": "faq-v3", 3: "non-string key"},
        route=routing.Route("teacher", 2, 41.5, True),
        options={"temperature": 0.2, "max_tokens": None},
        teacher_raw=b'data: {"x": 1}\n\ndata: [DONE]\n\n',
        teacher_sse=True,
        teacher_latency_ms=51.2,
        student_result=Answer("llama3", "ollama", "ok", 12.5, 3.0, 4, 1),
    )
    data = frames.encode_job(job)
    got, form = frames.decode_job(memoryview(data)[5:])
    assert form == "fields" and got.teacher is None
    assert got.teacher_raw == job.teacher_raw and got.teacher_sse
    assert got.messages == job.messages and got.ts == job.ts and got.id == "abc"
    assert got.conversation_id == job.conversation_id  # pseudonymised once, not twice
    assert got.route == job.route and got.student_result == job.student_result
    assert got.metadata == {"prompt_id": "faq-v3", "3": "non-string key"}
    assert got.options == job.options and got.teacher_latency_ms == 51.2


def test_a_response_object_becomes_answer_fields_and_a_closure_stays(encoder: str) -> None:
    completion = {
        "model": "gpt-4o-mini",
        "choices": [{"message": {"content": "Ciao!"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }
    got, form = frames.decode_job(
        memoryview(frames.encode_job(Job(messages=[], id="1", teacher_obj=completion)))[5:]
    )
    assert form == "obj" and got.teacher == {
        "model": "gpt-4o-mini",
        "response": "Ciao!",
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "tool_calls": None,
        "refusal": None,
        "finish_reason": None,
    }
    with pytest.raises(ValueError, match="background teacher call"):
        frames.encode_job(Job(messages=[], teacher_call=lambda: None))  # type: ignore[arg-type,return-value]


def test_the_serving_student_crosses_the_pipe_and_the_journal() -> None:
    # Route gained `student` (which registered student serves users); both encodings dropped
    # it, so a companion or a journal recovery led the fan-out with the wrong student.
    from shadowtutor.collect import journal

    route = routing.Route("student", 25, 3.5, True, "qwen-v2")
    job = Job(messages=[{"role": "user", "content": "hi"}], id="s1", route=route)
    got, _ = frames.decode_job(memoryview(frames.encode_job(job))[5:])
    assert got.route == route
    assert journal.decode(journal.encode(job)).route == route

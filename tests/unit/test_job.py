"""Calls, jobs and the records built from them: every form of a teacher answer, the
student's outcome, the caller's context; and the one cost, token and similarity policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shadowtutor.backends import Answer, BackendTimeout
from shadowtutor.collect.job import Call, Context, Job
from shadowtutor.collect.openai_shape import ChatRequest
from shadowtutor.cost import pricing
from shadowtutor.gate import routing
from shadowtutor.log import read, schema
from shadowtutor.similarity import SimilarityMethod, compare
from tests.support.shadow import FakeStudent, offline_collector

MSGS = [{"role": "user", "content": "hello there, how are you"}]
COMPLETION = {
    "model": "gpt-4o-mini",
    "choices": [{"message": {"role": "assistant", "content": "fine, thanks"}}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 3},
}
CHUNKS = [
    {"model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"content": "fine, "}}]},
    {"model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"content": "thanks"}}]},
]
SSE = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in CHUNKS) + b"data: [DONE]\n\n"


def logged(tmp_path: Path, *jobs: Job, **kw: Any) -> list[dict[str, Any]]:
    with offline_collector(tmp_path, **kw) as c:
        for job in jobs:
            assert c.submit(job)
        assert c.flush(10)
        return sorted(read.iter_records(c.log_dir), key=lambda r: r["ts"])


# --- calls and jobs ---------------------------------------------------------------------------


def test_a_call_becomes_a_job_with_its_context() -> None:
    request = ChatRequest.parse(
        {"model": "gpt-4o", "messages": MSGS, "max_tokens": 50, "temperature": 0.3,
         "user": "from-the-body"}
    )  # fmt: skip
    ctx = Context.from_shadow({"user": "ann", "conversation_id": "c1", "language": "en",
                               "metadata": {"prompt_id": "p"}})  # fmt: skip
    route = routing.Route("teacher", 10, 42.0, True)
    call = Call(request, ctx, route=route, shadowed=True, category="casual", metadata={"a": 1})
    job = call.job(teacher_obj=COMPLETION, teacher_latency_ms=12.0)
    assert call.user == "ann"  # the context's user wins over the body's
    assert job.user_hash == schema.pseudonymize("ann")
    assert (job.conversation_id, job.category, job.language) == (
        schema.pseudonymize_conversation("c1"),  # never stored raw
        "casual",
        "en",
    )
    assert job.metadata == {"a": 1, "teacher_model": "gpt-4o"}
    assert job.options == {"temperature": 0.3, "max_tokens": 50}
    assert job.route is route and job.teacher_obj is COMPLETION
    assert job.category_detected is True  # the caller gave no category: it was detected
    assert job.messages == MSGS and job.messages is not MSGS


def test_a_call_that_falls_back_keeps_the_students_failure() -> None:
    call = Call(
        ChatRequest.parse({"messages": MSGS}), route=routing.Route("student", 25, 1.0, True)
    )
    call.fell_back(BackendTimeout("the student did not answer in 1 s"))
    assert call.route == routing.Route("teacher", 25, 1.0, True)
    assert call.student_error == "timeout: the student did not answer in 1 s"
    assert call.metadata["fallback"] == call.student_error
    quiet = Call(
        ChatRequest.parse({"messages": MSGS}), route=routing.Route("student", 5, 1.0, True)
    )
    quiet.fell_back(None)  # breaker open: teacher, no failure to record
    assert quiet.route.served_by == "teacher" and quiet.student_error is None


def test_the_user_falls_back_to_the_request() -> None:
    body = {"messages": MSGS, "safety_identifier": "sid-1"}
    assert Call(ChatRequest.parse(body)).user == "sid-1"
    assert Call(ChatRequest.parse({"messages": MSGS, "user": 42})).user is None  # not a string
    assert Call(None).user is None


# --- records from every form of teacher answer ----------------------------------------------


@pytest.mark.parametrize(
    ("form", "estimated"),
    [
        ({"teacher_obj": COMPLETION}, False),
        ({"teacher_raw": json.dumps(COMPLETION).encode()}, False),
        ({"teacher_chunks": CHUNKS}, True),  # no usage block: estimated
        ({"teacher_raw": SSE, "teacher_sse": True}, True),
        ({"teacher": {"model": "gpt-4o-mini", "response": "fine, thanks"}}, True),
    ],
)
def test_every_teacher_form_gives_the_same_answer(
    tmp_path: Path, form: dict[str, Any], estimated: bool
) -> None:
    [rec] = logged(tmp_path, Job(messages=MSGS, teacher_latency_ms=9.0, **form))
    assert rec["teacher"]["response"] == "fine, thanks"
    assert rec["teacher"]["model"] == "gpt-4o-mini" and rec["teacher"]["provider"] == "openai"
    assert rec["teacher"]["cost_usd"] > 0 and rec["teacher"]["latency_ms"] == 9.0
    assert ("teacher" in rec["metadata"].get("usage_estimated", [])) is estimated
    assert rec["student"]["response"] == "student answer" and rec["student"]["cost_usd"] == 0.0


def test_a_background_teacher_call_and_a_student_that_served(tmp_path: Path) -> None:
    served = Answer("llama3", "ollama", "served text", 4.0, 1.0, 2, 2)
    teacher = Answer("gpt-4o-mini", "openai", "teacher text", 30.0, None, 5, 2)
    student = FakeStudent()
    job = Job(
        messages=MSGS,
        route=routing.Route("student", 10, 1.0, True),
        student_result=served,
        teacher_call=lambda: teacher,
    )
    [rec] = logged(tmp_path, job, student=student)
    assert student.calls == []  # the student already answered: not asked again
    assert rec["student"]["response"] == "served text"
    assert rec["teacher"]["response"] == "teacher text" and rec["teacher"]["latency_ms"] == 30.0
    assert rec["routing"]["served_by"] == "student"


def test_a_failing_teacher_call_is_recorded_not_raised(tmp_path: Path) -> None:
    def broken() -> Answer:
        raise RuntimeError("teacher down")

    [rec] = logged(
        tmp_path, Job(messages=MSGS, teacher_call=broken, metadata={"teacher_model": "gpt-4o"})
    )
    assert rec["teacher"]["error"] == "RuntimeError: teacher down"
    assert rec["teacher"]["model"] == "gpt-4o" and rec["teacher"]["response"] is None


def test_the_student_failure_given_by_the_request_path_is_kept(tmp_path: Path) -> None:
    student = FakeStudent()
    job = Job(messages=MSGS, teacher_obj=COMPLETION, student_error="http_error: HTTP 500")
    [rec] = logged(tmp_path, job, student=student)
    assert rec["student"]["error"] == "http_error: HTTP 500" and student.calls == []


def test_the_worker_asks_the_student_with_the_callers_options(tmp_path: Path) -> None:
    student = FakeStudent()
    job = Job(messages=MSGS, teacher_obj=COMPLETION, options={"temperature": 0.1, "max_tokens": 9})
    logged(tmp_path, job, student=student)
    assert student.calls == [{"messages": MSGS, "temperature": 0.1, "max_tokens": 9}]


# --- the one policy of each ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "monthly", "free"),
    [
        ("ollama", "llama3", 0.0, True),  # a local Ollama student
        ("openai-compatible", "gpt-4o-mini", 0.0, False),  # priced by the table
        ("openai-compatible", "gpt-4o-mini", 300.0, True),  # a flat monthly GPU rental
        ("openai-compatible", "llama3:8b", 0.0, True),  # priced `local` in the table
        ("openai-compatible", "my-own-model", 0.0, False),  # unknown: not free (cost unknown)
    ],
)
def test_when_a_student_costs_nothing(
    provider: str, model: str, monthly: float, free: bool
) -> None:
    table = pricing.load_table()
    assert pricing.student_is_free(provider, model, table, monthly) is free


def test_token_estimates() -> None:
    msgs = [{"role": "user", "content": "x" * 40}, {"role": "system", "content": None}]
    assert pricing.estimate_usage(msgs, "y" * 8) == (10, 2, True)
    assert pricing.estimate_usage(msgs, "y" * 8, 3, 4) == (3, 4, False)
    assert pricing.estimate_usage(msgs, "y" * 8, 3, None) == (10, 2, True)  # half a usage block
    assert pricing.estimate_usage([], "") == (1, 1, True)


def test_similarity_with_its_error() -> None:
    class Down(SimilarityMethod):
        name = "ollama:nomic-embed-text"

        def score(self, a: str | None, b: str | None) -> float | None:
            raise BackendTimeout("the embedding server did not answer")

    ok = compare(SimilarityMethod(), "the order ships monday", "the order ships monday")
    assert (ok.method, ok.score, ok.error) == ("lexical", 1.0, None)
    assert compare(SimilarityMethod(), None, "x").score is None
    failed = compare(Down(), "a", "b")
    assert (failed.score, failed.error) == (None, "timeout: the embedding server did not answer")

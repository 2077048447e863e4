"""The wrapper's parts without a server: the one request parser, the response shapes, the tee
streams, and the request path over a fake ``chat.completions`` (sync and async)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from shadowtutor.backends import Answer
from shadowtutor.collect import openai_shape
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.collect.wrapper import AsyncShadowCompletions, ShadowCompletions
from shadowtutor.log import read
from tests.support.shadow import FakeStudent, offline_collector

MSGS = [{"role": "user", "content": "hello there"}]
RESULT = Answer("llama3", "ollama", "student text", 5.0, 1.0, 4, 2, finish_reason="stop")
TEACHER = ChatCompletion.model_validate(
    openai_shape.completion_dict(Answer("gpt-4o-mini", "openai", "teacher text", 1.0, None, 3, 2))
)


class FakeCompletions:
    """``client.chat.completions`` of a fake client: answers TEACHER (or a list of chunks for
    ``stream=True``), or raises ``fails``; keeps what it was called with."""

    def __init__(self, fails: BaseException | None = None):
        self.fails = fails
        self.calls: list[dict[str, Any]] = []

    def create(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if self.fails is not None:
            raise self.fails
        if kwargs.get("stream"):
            chunks = openai_shape.chunk_dicts(Answer("gpt-4o-mini", "openai", "teacher text", 1.0))
            return FakeStream([ChatCompletionChunk.model_validate(c) for c in chunks])
        return TEACHER


class FakeAsyncCompletions(FakeCompletions):
    async def create(self, **kwargs: Any) -> Any:  # type: ignore[override]
        return FakeCompletions.create(self, **kwargs)


class FakeStream:
    def __init__(self, chunks: list[Any]):
        self._it = iter(chunks)
        self.closed = False

    def __next__(self) -> Any:
        return next(self._it)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def collector(tmp_path: Path) -> Any:
    with offline_collector(tmp_path, student=FakeStudent("student text")) as c:
        yield c


def logged(c: ShadowCollector) -> list[dict[str, Any]]:
    assert c.flush(10)
    return list(read.iter_records(c.log_dir))


def completions(c: ShadowCollector, fake: FakeCompletions | None = None) -> ShadowCompletions:
    fake = fake or FakeCompletions()
    return ShadowCompletions(fake, c, fake.create)


# --- the one parser -------------------------------------------------------------------------


def test_the_parser_reads_every_field() -> None:
    body = {
        "model": "gpt-4o", "messages": MSGS, "max_completion_tokens": 30, "max_tokens": 99,
        "temperature": 0.5, "stream": True, "stream_options": {"include_usage": True},
        "safety_identifier": "sid",
    }  # fmt: skip
    req = openai_shape.ChatRequest.parse(body)
    assert (req.model, req.max_tokens, req.temperature) == ("gpt-4o", 30, 0.5)
    assert (req.stream, req.include_usage, req.user) == (True, True, "sid")
    assert req.options == {"temperature": 0.5, "max_tokens": 30}
    assert "stream" not in req.teacher_body() and "stream_options" not in req.teacher_body()
    assert openai_shape.ChatRequest.parse({"messages": MSGS, "max_tokens": 7}).max_tokens == 7
    assert (
        openai_shape.ChatRequest.parse(
            {"messages": MSGS, "user": "u", "safety_identifier": "s"}
        ).user
        == "u"
    )


def test_an_iterable_of_messages_is_made_a_list_for_the_wrapper_only() -> None:
    body = {"messages": iter(MSGS)}
    req = openai_shape.ChatRequest.parse(body, coerce=True)
    assert body["messages"] == MSGS and req.messages == MSGS  # the API call still gets them
    with pytest.raises(openai_shape.NotAChatRequest):
        openai_shape.ChatRequest.parse({"messages": "hi"})


# --- shapes -------------------------------------------------------------------------------------


def test_a_student_answer_shaped_as_a_completion_and_a_stream() -> None:
    done = ChatCompletion.model_validate(openai_shape.completion_dict(RESULT))
    assert done.choices[0].message.content == "student text" and done.usage.total_tokens == 6
    chunks = openai_shape.chunk_dicts(RESULT, include_usage=True)
    assert [ChatCompletionChunk.model_validate(c).object for c in chunks] == [
        "chat.completion.chunk"
    ] * 4
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert len({c["id"] for c in chunks}) == 1
    events = openai_shape.parse_sse(openai_shape.sse_body(RESULT))
    assert openai_shape.teacher_from_chunks(events)["response"] == "student text"
    assert openai_shape.sse_body(RESULT).endswith(b"data: [DONE]\n\n")


def test_a_teacher_completion_read_back() -> None:
    back = openai_shape.result_from_completion(TEACHER, 12.5)
    assert (back.text, back.latency_ms, back.prompt_tokens, back.usage_estimated) == (
        "teacher text", 12.5, 3, False,
    )  # fmt: skip


# --- the request path over a fake client -----------------------------------------------------


def test_the_app_gets_the_teachers_object_and_the_pair_is_logged(collector: Any) -> None:
    fake = FakeCompletions()
    got = completions(collector, fake).create(
        model="gpt-4o-mini", messages=MSGS, shadow={"user": "ann", "metadata": {"k": "v"}}
    )
    assert got is TEACHER
    assert fake.calls == [{"model": "gpt-4o-mini", "messages": MSGS}]  # no `shadow`
    [rec] = logged(collector)
    assert rec["teacher"]["response"] == "teacher text" and rec["metadata"]["k"] == "v"
    assert rec["student"]["response"] == "student text"


def test_a_teacher_error_is_raised_as_is_and_counted(collector: Any) -> None:
    boom = ValueError("teacher says no")
    with pytest.raises(ValueError) as info:
        completions(collector, FakeCompletions(fails=boom)).create(model="m", messages=MSGS)
    assert info.value is boom
    assert collector.stats()["teacher_errors"] == 1 and logged(collector) == []


def test_a_request_it_cannot_read_goes_to_the_teacher_untouched(collector: Any) -> None:
    fake = FakeCompletions()
    assert completions(collector, fake).create(model="m", messages=5) is TEACHER
    assert fake.calls == [{"model": "m", "messages": 5}]  # the API will say what is wrong
    assert logged(collector) == [] and collector.stats()["enqueued"] == 0


def test_a_teed_stream_is_logged_at_its_end(collector: Any) -> None:
    stream = completions(collector).create(model="gpt-4o-mini", messages=MSGS, stream=True)
    texts = [c.choices[0].delta.content for c in stream]
    assert "".join(t or "" for t in texts) == "teacher text"
    [rec] = logged(collector)
    assert rec["teacher"]["response"] == "teacher text" and rec["teacher"]["ttft_ms"] is not None


def test_a_stream_left_early_is_counted_and_closed(collector: Any) -> None:
    fake = FakeCompletions()
    with completions(collector, fake).create(model="m", messages=MSGS, stream=True) as stream:
        next(stream)
    assert stream._stream.closed  # the original stream, closed through the tee
    assert collector.stats()["streams_abandoned"] == 1 and logged(collector) == []


def test_the_student_serves_and_the_teacher_answers_in_the_background(
    collector: Any,
    route_to_student,  # noqa: ANN001
) -> None:
    route_to_student(stage=50, bucket=2.0)
    fake = FakeCompletions()
    got = completions(collector, fake).create(
        model="gpt-4o-mini", messages=MSGS, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(got)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "student text"
    assert chunks[-1].usage is not None  # the app asked for a usage chunk
    [rec] = logged(collector)
    assert fake.calls == [{"model": "gpt-4o-mini", "messages": MSGS}]  # background: not streamed
    assert rec["routing"]["served_by"] == "student" and rec["teacher"]["response"] == "teacher text"
    assert collector.stats()["served_by_student"] == 1


def test_a_failing_student_falls_back_to_the_teacher(tmp_path: Path, route_to_student) -> None:  # noqa: ANN001
    route_to_student()
    student = FakeStudent(fails=RuntimeError("student crashed"))
    with offline_collector(tmp_path, student=student) as c:
        assert completions(c).create(model="gpt-4o-mini", messages=MSGS) is TEACHER
        [rec] = logged(c)
        stats = c.stats()
    assert rec["student"]["error"] == "RuntimeError: student crashed"
    assert rec["routing"]["served_by"] == "teacher" and len(student.calls) == 1
    assert stats["student_fallbacks"] == 1 and "student crashed" in stats["last_error"]


def test_the_async_wrapper_walks_the_same_path(collector: Any, route_to_student) -> None:  # noqa: ANN001
    async def run(fake: FakeAsyncCompletions) -> Any:
        path = AsyncShadowCompletions(fake, collector, FakeCompletions().create)
        return await path.create(model="gpt-4o-mini", messages=MSGS)

    assert asyncio.run(run(FakeAsyncCompletions())) is TEACHER
    route_to_student()
    served = asyncio.run(run(FakeAsyncCompletions()))
    assert (
        isinstance(served, ChatCompletion) and served.choices[0].message.content == "student text"
    )
    served_by = [
        r["routing"]["served_by"] for r in sorted(logged(collector), key=lambda r: r["ts"])
    ]
    assert served_by == ["teacher", "student"]

"""OpenAI's Responses API through the proxy (POST /v1/responses), driven by the official
``openai`` SDK (``client.responses.create``) against a loopback Responses server."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response

from shadowtutor.config import Settings
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import RunningProxy as Running

STUDENT = {"models": ["llama3"], "answer": "I am fine thank you"}
TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
def running(tmp_path: Path, teacher: ModelServer, student: ModelServer) -> Iterator[Running]:
    settings = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
            "SHADOWTUTOR_TEACHER_API_KEY": "sk-configured",
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_STUDENT_TIMEOUT_S": "2",
            "SHADOWTUTOR_BREAKER_FAILURES": "50",
        }
    )
    run = Running(settings)
    yield run
    run.close()


def _events(raw: bytes) -> bytes:
    """The stream with its per-call values (ids, times) blanked."""
    raw = re.sub(rb'"(resp|msg|fc)_[0-9_]+"', b'"ID"', raw)
    return re.sub(rb'"created_at": [0-9]+', b'"created_at": 0', raw)


def test_a_string_input_with_instructions(running: Running, teacher: ModelServer) -> None:
    direct = openai.OpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0)
    want = direct.responses.create(model="gpt-4o-mini", input="hi there", instructions="Be kind")
    got = running.client().responses.create(
        model="gpt-4o-mini", input="hi there", instructions="Be kind", user="u-1"
    )
    assert got.output_text == want.output_text == "echo: hi there"
    assert got.usage == want.usage
    [rec] = running.records(expect=1)
    assert rec["protocol"] == "openai.responses"
    assert rec["messages"] == [
        {"role": "system", "content": "Be kind"},
        {"role": "user", "content": "hi there"},
    ]
    assert rec["teacher"]["response"] == "echo: hi there"
    assert rec["teacher"]["finish_reason"] == "completed"
    assert rec["student"]["response"] == "I am fine thank you" and rec["user_hash"]


def test_items_tools_and_the_stream(
    running: Running, teacher: ModelServer, student: ModelServer
) -> None:
    items: list[Any] = [
        {"role": "user", "content": [{"type": "input_text", "text": "weather in Rome?"}]},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Rome"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"role": "user", "content": "and Paris?"},
    ]
    body = {"model": "gpt-4o-mini", "input": items, "tools": [TOOL], "stream": True}
    direct = httpx.post(f"{teacher.openai_url}/responses", json=body)
    via = httpx.post(f"{running.url}/v1/responses", json=body)
    assert _events(via.content) == _events(direct.content)
    stream = running.client().responses.create(
        model="gpt-4o-mini", input=items, tools=[TOOL], stream=True
    )
    kinds = [event.type for event in stream]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    recs = running.records(expect=2)
    rec = recs[-1]
    assert rec["request"]["kind"] == "tools" and rec["request"]["tools"] == ["get_weather"]
    assert rec["teacher"]["tool_calls"] == [
        {"name": "get_weather", "arguments": '{"city": "and Paris?"}'}
    ]
    assert rec["agreement"]["kind"] == "tool_calls"
    asked = [b for p, b in student.requests if p == "/api/chat"][-1]
    assert [m["role"] for m in asked["messages"]] == ["user", "assistant", "tool", "user"]


def test_a_continued_response_is_context_held_by_the_teacher(
    running: Running, student: ModelServer, route_to_student: Callable[..., None]
) -> None:
    route_to_student(stage=25, bucket=1.0)
    got = running.client().responses.create(
        model="gpt-4o-mini", input="and then?", previous_response_id="resp_1"
    )
    assert got.output_text == "echo: and then?"  # the teacher's, though routed to the student
    [rec] = running.records(expect=1)
    assert rec["metadata"]["context"] == "held by the teacher"
    assert rec["routing"]["served_by"] == "teacher"
    assert rec["routing"]["reason"] == "context: held by the teacher"
    assert rec["student"]["model"] is None and rec["agreement"]["score"] is None
    assert student.count("/api/chat") == 0
    assert running.collector.stats()["context_held"] == 1


@pytest.mark.parametrize("stream", [False, True])
def test_after_a_go_the_student_answers_as_a_response(
    running: Running, route_to_student: Callable[..., None], stream: bool
) -> None:
    route_to_student(stage=25, bucket=1.0)
    client = running.client()
    if stream:
        events = list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True))
        final = events[-1]
        assert final.type == "response.completed"
        response = final.response
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    else:
        response = client.responses.create(model="gpt-4o-mini", input="hi")
        text = response.output_text
    assert isinstance(response, Response) and text == "I am fine thank you"
    assert response.model == "llama3"
    [rec] = running.records(expect=1)
    assert rec["routing"]["served_by"] == "student" and rec["protocol"] == "openai.responses"
    assert rec["teacher"]["response"] == "echo: hi"


def test_teacher_errors_pass_through(running: Running, teacher: ModelServer) -> None:
    with pytest.raises(openai.NotFoundError, match="gpt-9"):
        running.client().responses.create(model="gpt-9", input="x")
    teacher.status = 500
    with pytest.raises(openai.InternalServerError, match="loopback fault"):
        running.client().responses.create(model="gpt-4o-mini", input="x")
    assert running.records() == [] and running.collector.stats()["teacher_errors"] == 2

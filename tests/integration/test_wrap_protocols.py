"""The wrapper on an ``anthropic.Anthropic`` / ``AsyncAnthropic`` client (messages.create,
messages.stream) and on ``responses.create`` of an OpenAI client, against loopback servers
speaking the Messages and Responses protocols, the student a loopback Ollama."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from openai.types.responses import Response

import shadowtutor
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import collector_for, records

MODEL = "claude-haiku-4-5"
TEACHER = {"models": [MODEL, "gpt-4o-mini"]}
STUDENT = {"models": ["llama3"], "answer": "I am fine thank you"}
MSGS = [{"role": "user", "content": "hello, how are you today"}]
ECHO = "echo: hello, how are you today"
WEATHER = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}

pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
def collector(tmp_path: Path, student: ModelServer) -> Iterator[ShadowCollector]:
    c = collector_for(tmp_path, student, {"SHADOWTUTOR_STUDENT_TIMEOUT_S": "2"})
    yield c
    c.close()


def claude(teacher: ModelServer, c: ShadowCollector, cls: Any = anthropic.Anthropic) -> Any:
    return shadowtutor.wrap(cls(base_url=teacher.url, api_key="k", max_retries=0), c)


def test_messages_create_plain_streamed_and_with_tools(
    teacher: ModelServer, collector: ShadowCollector
) -> None:
    client = claude(teacher, collector)
    message = client.messages.create(model=MODEL, max_tokens=64, messages=MSGS, system="Hi")
    assert isinstance(message, anthropic.types.Message) and message.content[0].text == ECHO
    events = list(client.messages.create(model=MODEL, max_tokens=64, messages=MSGS, stream=True))
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    called = client.messages.create(model=MODEL, max_tokens=64, messages=MSGS, tools=[WEATHER])
    assert called.content[0].type == "tool_use"
    recs = records(collector, expect=3)
    assert [r["protocol"] for r in recs] == ["anthropic.messages"] * 3
    assert [r["teacher"]["response"] for r in recs] == [ECHO, ECHO, ""]
    assert recs[0]["messages"][0] == {"role": "system", "content": "Hi"}
    assert recs[1]["teacher"]["ttft_ms"] is not None and recs[1]["teacher"]["error"] is None
    assert recs[2]["request"]["kind"] == "tools"
    assert recs[2]["teacher"]["tool_calls"] == [
        {"name": "get_weather", "arguments": {"city": "hello, how are you today"}}
    ]
    assert all(r["student"]["response"] == "I am fine thank you" for r in recs[:2])


def test_messages_stream_helper(teacher: ModelServer, collector: ShadowCollector) -> None:
    client = claude(teacher, collector)
    with client.messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ECHO and final.content[0].text == ECHO
    [rec] = records(collector, expect=1)
    assert rec["teacher"]["response"] == ECHO and rec["protocol"] == "anthropic.messages"


def test_the_async_client(teacher: ModelServer, collector: ShadowCollector) -> None:
    client = claude(teacher, collector, anthropic.AsyncAnthropic)

    async def run() -> tuple[Any, str]:
        message = await client.messages.create(model=MODEL, max_tokens=64, messages=MSGS)
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as s:
            text = "".join([t async for t in s.text_stream])
        return message, text

    message, text = asyncio.run(run())
    assert message.content[0].text == ECHO and text == ECHO
    recs = records(collector, expect=2)
    assert [r["teacher"]["response"] for r in recs] == [ECHO, ECHO]


@pytest.mark.parametrize("style", ["create", "stream", "helper"])
def test_after_a_go_the_student_answers_as_a_message(
    teacher: ModelServer,
    collector: ShadowCollector,
    route_to_student: Callable[..., None],
    style: str,
) -> None:
    route_to_student(stage=25, bucket=1.0)
    client = claude(teacher, collector)
    if style == "create":
        message = client.messages.create(model=MODEL, max_tokens=64, messages=MSGS)
        text = message.content[0].text
    elif style == "stream":
        events = list(
            client.messages.create(model=MODEL, max_tokens=64, messages=MSGS, stream=True)
        )
        assert all(isinstance(e, anthropic.types.RawMessageStreamEvent.__args__) for e in events)  # type: ignore[attr-defined]
        text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    else:
        with client.messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as s:
            text = "".join(s.text_stream)
            assert s.get_final_message().stop_reason == "end_turn"
    assert text == "I am fine thank you"
    [rec] = records(collector, expect=1)
    assert rec["routing"]["served_by"] == "student" and rec["teacher"]["response"] == ECHO


def test_responses_create(teacher: ModelServer, collector: ShadowCollector) -> None:
    client = shadowtutor.wrap(
        openai.OpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0), collector
    )
    got = client.responses.create(model="gpt-4o-mini", input="hi", instructions="Be kind")
    assert isinstance(got, Response) and got.output_text == "echo: hi"
    kinds = [e.type for e in client.responses.create(model="gpt-4o-mini", input="yo", stream=True)]
    assert kinds[-1] == "response.completed"
    client.responses.create(model="gpt-4o-mini", input="and?", previous_response_id="resp_0")
    recs = records(collector, expect=3)
    assert [r["protocol"] for r in recs] == ["openai.responses"] * 3
    assert [r["teacher"]["response"] for r in recs] == ["echo: hi", "echo: yo", "echo: and?"]
    assert recs[0]["student"]["response"] == "I am fine thank you"
    assert recs[2]["metadata"]["context"] == "held by the teacher"
    assert recs[2]["student"]["model"] is None


def test_async_responses_after_a_go(
    teacher: ModelServer, collector: ShadowCollector, route_to_student: Callable[..., None]
) -> None:
    route_to_student(stage=25, bucket=1.0)
    client = shadowtutor.wrap(
        openai.AsyncOpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0), collector
    )

    async def run() -> tuple[Any, list[Any]]:
        got = await client.responses.create(model="gpt-4o-mini", input="hi")
        stream = await client.responses.create(model="gpt-4o-mini", input="hi", stream=True)
        return got, [e async for e in stream]

    got, events = asyncio.run(run())
    assert got.output_text == "I am fine thank you"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "I am fine thank you"
    recs = records(collector, expect=2)
    assert {r["routing"]["served_by"] for r in recs} == {"student"}
    assert {r["teacher"]["response"] for r in recs} == {"echo: hi"}


def test_the_wrapper_does_not_need_the_anthropic_package(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['anthropic'] = None\n"
        "import openai, shadowtutor\n"
        "from shadowtutor.collect.collector import ShadowCollector\n"
        "c = ShadowCollector(refresh_routing=False)\n"
        "w = shadowtutor.wrap(openai.OpenAI(api_key='k'), c)\n"
        "print(type(w).__name__)\n"
        "try:\n"
        "    shadowtutor.wrap(object(), c)\n"
        "except TypeError as exc:\n"
        "    print(exc)\n"
    )
    env = {"SHADOWTUTOR_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.splitlines() == [
        "ShadowClient",
        "ShadowCollector.wrap() takes an openai.OpenAI or openai.AsyncOpenAI client, or an "
        "anthropic.Anthropic or anthropic.AsyncAnthropic one, not object",
    ]

"""Claude's Messages API through the proxy (POST /v1/messages), driven by the official
``anthropic`` SDK against a loopback server speaking the Messages protocol; the student is a
loopback Ollama server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from shadowtutor.config import Settings
from shadowtutor.cost import pricing
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import RunningProxy as Running

MODEL = "claude-haiku-4-5"
TEACHER = {"models": [MODEL, "gpt-4o-mini"]}
STUDENT = {"models": ["llama3"], "answer": "I am fine thank you"}
MSGS = [{"role": "user", "content": "hello, how are you today"}]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
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
            "SHADOWTUTOR_ANTHROPIC_BASE_URL": teacher.url,
            "SHADOWTUTOR_ANTHROPIC_API_KEY": "sk-ant-configured",
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_STUDENT_TIMEOUT_S": "2",
            "SHADOWTUTOR_BREAKER_FAILURES": "50",
        }
    )
    run = Running(settings)
    yield run
    run.close()


def claude(base_url: str, key: str = "sk-ant-caller", cls: Any = anthropic.Anthropic) -> Any:
    return cls(base_url=base_url, api_key=key, max_retries=0)


def _events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for line in raw.splitlines():
        if line.startswith(b"data:"):
            event = json.loads(line[5:])
            if event.get("type") == "message_start":
                event["message"].pop("id")  # the one per-call value
            out.append(event)
    return out


def test_a_message_is_the_teachers_and_is_recorded(running: Running, teacher: ModelServer) -> None:
    teacher.cache_usage = (100, 2000)
    want = claude(teacher.url).messages.create(
        model=MODEL, max_tokens=64, system="Be brief.", messages=MSGS
    )
    got = claude(running.url).messages.create(
        model=MODEL,
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=MSGS,
        metadata={"user_id": "u-7"},
        extra_headers={"X-ShadowTutor-Category": "support"},
    )
    assert got.content == want.content and got.usage == want.usage
    seen = {k.lower(): v for k, v in teacher.headers[-1].items()}
    # the caller's key as its SDK sends it (anthropic 2.x: a bearer token), its API version
    assert seen["authorization"] == "Bearer sk-ant-caller" and "x-api-key" not in seen
    assert (
        seen["anthropic-version"]
        == anthropic.Anthropic(api_key="k").default_headers["anthropic-version"]
    )
    assert not any(k.startswith("x-shadowtutor") for k in seen)
    [rec] = running.records(expect=1)
    assert rec["protocol"] == "anthropic.messages"
    assert rec["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello, how are you today"},
    ]
    assert rec["teacher"]["response"] == "echo: hello, how are you today"
    assert rec["teacher"]["finish_reason"] == "end_turn"
    assert rec["student"]["response"] == "I am fine thank you"
    assert rec["category"] == "support" and rec["user_hash"]
    t = rec["teacher"]
    assert (t["cache_creation_tokens"], t["cache_read_tokens"]) == (100, 2000)
    assert t["prompt_tokens"] == want.usage.input_tokens + 2100
    price = pricing.load_table().lookup(MODEL)
    assert price is not None and price.cache_read_per_m == pytest.approx(0.1)
    expected = (
        want.usage.input_tokens * 1.0 + 100 * 1.25 + 2000 * 0.1 + want.usage.output_tokens * 5.0
    ) / 1e6
    assert t["cost_usd"] == pytest.approx(expected)


def test_the_stream_passes_through_as_it_comes(running: Running, teacher: ModelServer) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": MSGS, "stream": True}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    direct = httpx.post(f"{teacher.url}/v1/messages", json=body, headers=headers)
    via = httpx.post(f"{running.url}/v1/messages", json=body, headers=headers)
    assert via.headers["content-type"].startswith("text/event-stream")
    assert _events(via.content) == _events(direct.content)
    assert via.content.count(b"event: ") == direct.content.count(b"event: ")
    with claude(running.url).messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "echo: hello, how are you today" and final.stop_reason == "end_turn"
    recs = running.records(expect=2)
    assert [r["teacher"]["response"] for r in recs] == ["echo: hello, how are you today"] * 2
    assert all(r["teacher"]["ttft_ms"] is not None and r["teacher"]["error"] is None for r in recs)


def test_tool_use_and_tool_results(
    running: Running, teacher: ModelServer, student: ModelServer
) -> None:
    turns = [
        {"role": "user", "content": "weather in Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "and in Paris?"},
            ],
        },
    ]
    student.strict_ollama = True  # refuses OpenAI-shaped messages, as a real Ollama does
    got = claude(running.url).messages.create(
        model=MODEL, max_tokens=64, messages=turns, tools=[WEATHER]
    )
    [block] = got.content
    assert block.type == "tool_use" and block.input == {"city": "and in Paris?"}
    [rec] = running.records(expect=1)
    assert rec["request"]["kind"] == "tools" and rec["request"]["tools"] == ["get_weather"]
    assert rec["teacher"]["tool_calls"] == [
        {"name": "get_weather", "arguments": {"city": "and in Paris?"}}
    ]
    assert rec["agreement"]["kind"] == "tool_calls" and rec["agreement"]["score"] == 1.0
    asked = [b for p, b in student.requests if p == "/api/chat"][-1]
    assert [m["role"] for m in asked["messages"]] == ["user", "assistant", "tool", "user"]
    assert asked["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Rome"}
    assert asked["messages"][2]["content"] == "sunny"
    assert asked["tools"][0]["function"]["name"] == "get_weather"


def test_teacher_errors_come_back_byte_for_byte(running: Running, teacher: ModelServer) -> None:
    teacher.status = 529
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    body = {"model": MODEL, "max_tokens": 8, "messages": MSGS}
    direct = httpx.post(f"{teacher.url}/v1/messages", json=body, headers=headers)
    via = httpx.post(f"{running.url}/v1/messages", json=body, headers=headers)
    assert via.status_code == direct.status_code == 529 and via.content == direct.content
    with pytest.raises(anthropic.APIStatusError) as info:
        claude(running.url).messages.create(model=MODEL, max_tokens=8, messages=MSGS)
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    teacher.status = None
    with pytest.raises(anthropic.NotFoundError):
        claude(running.url).messages.create(model="claude-nope", max_tokens=8, messages=MSGS)
    assert running.records() == [] and running.collector.stats()["teacher_errors"] == 3


def test_the_configured_key_and_an_unreachable_upstream(
    running: Running, teacher: ModelServer
) -> None:
    headers = {"anthropic-version": "2023-06-01"}
    body = {"model": MODEL, "max_tokens": 8, "messages": MSGS}
    assert httpx.post(f"{running.url}/v1/messages", json=body, headers=headers).status_code == 200
    seen = {k.lower(): v for k, v in teacher.headers[-1].items()}
    assert seen["x-api-key"] == "sk-ant-configured"
    own = headers | {"x-api-key": "sk-ant-own", "anthropic-beta": "b-1"}
    assert httpx.post(f"{running.url}/v1/messages", json=body, headers=own).status_code == 200
    seen = {k.lower(): v for k, v in teacher.headers[-1].items()}
    assert (seen["x-api-key"], seen["anthropic-beta"]) == ("sk-ant-own", "b-1")
    assert seen["anthropic-version"] == "2023-06-01"
    tokens = httpx.post(f"{running.url}/v1/messages/count_tokens", json=body, headers=headers)
    assert tokens.status_code == 404 and teacher.count("/v1/messages/count_tokens") == 1
    teacher.down()
    with pytest.raises(anthropic.APIStatusError, match="unreachable") as info:
        claude(running.url).messages.create(model=MODEL, max_tokens=8, messages=MSGS)
    assert info.value.status_code == 502


@pytest.mark.parametrize("stream", [False, True])
def test_after_a_go_the_student_answers_as_a_claude_message(
    running: Running, route_to_student: Callable[..., None], stream: bool
) -> None:
    route_to_student(stage=25, bucket=1.0)
    client = claude(running.url)
    if stream:
        with client.messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as s:
            text = "".join(s.text_stream)
            message = s.get_final_message()
    else:
        message = client.messages.create(model=MODEL, max_tokens=64, messages=MSGS)
        text = message.content[0].text
    assert isinstance(message, anthropic.types.Message)
    assert text == "I am fine thank you" and message.stop_reason == "end_turn"
    assert message.model == "llama3" and message.usage.output_tokens > 0
    [rec] = running.records(expect=1)
    assert rec["routing"]["served_by"] == "student" and rec["protocol"] == "anthropic.messages"
    assert rec["teacher"]["response"] == "echo: hello, how are you today"


def test_after_a_go_a_tools_request_still_goes_to_the_teacher(
    running: Running, route_to_student: Callable[..., None]
) -> None:
    route_to_student(stage=25, bucket=1.0)
    got = claude(running.url).messages.create(
        model=MODEL, max_tokens=64, messages=MSGS, tools=[WEATHER]
    )
    assert got.content[0].type == "tool_use"  # the teacher's
    [rec] = running.records(expect=1)
    assert rec["routing"]["served_by"] == "teacher" and rec["routing"]["reason"] == "kind: tools"


def test_the_async_sdk_and_an_image(running: Running, student: ModelServer) -> None:
    import asyncio

    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    content = [{"type": "image", "source": image}, {"type": "text", "text": "what is this"}]

    async def ask() -> Any:
        client = claude(running.url, cls=anthropic.AsyncAnthropic)
        return await client.messages.create(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": content}]
        )

    got = asyncio.run(ask())
    assert got.content[0].text == "echo: what is this"
    [rec] = running.records(expect=1)
    assert rec["request"]["kind"] == "images"
    asked = [b for p, b in student.requests if p == "/api/chat"][-1]
    assert asked["messages"][0]["images"] == ["iVBORw0KGgo="]


def test_a_teacher_stream_cut_mid_way_reaches_the_app_cut(
    running: Running, teacher: ModelServer
) -> None:
    teacher.cut_after = 3
    with pytest.raises(Exception):  # noqa: B017 (the SDK's or httpx's error for a cut stream)
        with claude(running.url).messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as s:
            "".join(s.text_stream)
    assert running.records() == []
    assert running.collector.stats()["teacher_errors"] == 1


def test_with_the_companion_process(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    settings = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "SHADOWTUTOR_ANTHROPIC_BASE_URL": teacher.url,
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_COMPANION": "1",
        }
    )
    run = Running(settings)
    try:
        assert run.collector.companion is not None
        client = claude(run.url)
        client.messages.create(model=MODEL, max_tokens=64, messages=MSGS, tools=[WEATHER])
        with client.messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as s:
            "".join(s.text_stream)
        deadline = time.monotonic() + 30  # a loaded host: the companion reports each second
        recs = run.records()
        while len(recs) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            recs = run.records()
    finally:
        run.close()
    assert [r["protocol"] for r in recs] == ["anthropic.messages"] * 2
    called, streamed = recs
    assert called["teacher"]["tool_calls"][0]["name"] == "get_weather"
    assert called["request"]["kind"] == "tools"
    assert streamed["teacher"]["response"] == "echo: hello, how are you today"
    assert streamed["student"]["response"] == "I am fine thank you"


def test_an_openai_compatible_student(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    settings = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "SHADOWTUTOR_ANTHROPIC_BASE_URL": teacher.url,
            "SHADOWTUTOR_STUDENT_BACKEND": "openai",
            "SHADOWTUTOR_STUDENT_BASE_URL": student.openai_url,
            "SHADOWTUTOR_STUDENT_TIMEOUT_S": "2",
        }
    )
    run = Running(settings)
    try:
        claude(run.url).messages.create(
            model=MODEL, max_tokens=64, system="Be brief.", messages=MSGS, tools=[WEATHER]
        )
        [rec] = run.records(expect=1)
    finally:
        run.close()
    asked = [b for p, b in student.requests if p == "/v1/chat/completions"][-1]
    assert asked["messages"][0] == {"role": "system", "content": "Be brief."}
    assert asked["tools"][0]["function"]["name"] == "get_weather"
    assert asked["max_tokens"] == 64
    assert rec["student"]["tool_calls"] == [
        {"name": "get_weather", "arguments": '{"city": "hello, how are you today"}'}
    ]
    assert rec["agreement"]["kind"] == "tool_calls" and rec["agreement"]["score"] == 1.0


@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_student_falls_back_to_the_teacher(
    running: Running,
    student: ModelServer,
    route_to_student: Callable[..., None],
    stream: bool,
) -> None:
    route_to_student(stage=25, bucket=1.0)
    student.status = 500
    client = claude(running.url)
    if stream:
        with client.messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as s:
            text = "".join(s.text_stream)
    else:
        text = client.messages.create(model=MODEL, max_tokens=64, messages=MSGS).content[0].text
    assert text == "echo: hello, how are you today"  # the teacher's, as if nothing happened
    [rec] = running.records(expect=1)
    assert rec["routing"]["served_by"] == "teacher" and "fallback" in rec["metadata"]
    assert rec["student"]["error"] and running.collector.stats()["student_fallbacks"] == 1

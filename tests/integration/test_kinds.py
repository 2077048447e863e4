"""Requests that are not plain chat (tools, a JSON schema): never served by the student, at any
rollout stage, through the sync and async wrapper and the proxy (real openai clients, loopback
servers answering tool calls and JSON), and counted by reason."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pydantic
import pytest

from shadowtutor import db
from shadowtutor.accounts.permissions import SYSTEM
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.config import Settings
from shadowtutor.gate import criteria, decisions, evidence, rollout, routing
from shadowtutor.gate.criteria import Aggregate, Window
from shadowtutor.testing.modelserver import ModelServer
from tests.support.gatecases import account, agg, config
from tests.support.shadow import RunningProxy, collector_for, openai_client, records

STUDENT = {"models": ["llama3"], "answer": "student prose"}
MSGS = [{"role": "user", "content": "book a table for two in Rome"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "book_table",
            "description": "Book a table",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
                "required": ["city", "people"],
            },
        },
    }
]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "booking",
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
            "required": ["city", "people"],
        },
    },
}
TEACHER_CALL = ("book_table", {"city": "book a table for two in Rome", "people": 1})
TEACHER_JSON = {"city": "book a table for two in Rome", "people": 1}
REQUESTS: dict[str, dict[str, Any]] = {
    "tools": {"tools": TOOLS},
    "json_schema": {"response_format": SCHEMA},
}

pytestmark = pytest.mark.usefixtures("home")


def what_the_app_got(resp: Any, stream: bool) -> Any:
    """The tool call (name, arguments) or the JSON the app read."""
    if stream:
        text, name, args = "", None, ""
        for chunk in resp:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for call in choice.delta.tool_calls or []:
                    name = name or call.function.name
                    args += call.function.arguments or ""
        return (name, json.loads(args)) if name else json.loads(text)
    message = resp.choices[0].message
    if message.tool_calls:
        call = message.tool_calls[0]
        return (call.function.name, json.loads(call.function.arguments))
    return json.loads(message.content)


def via_sync_wrapper(
    c: ShadowCollector, teacher: ModelServer, extra: dict[str, Any], stream: bool
) -> Any:
    client = c.wrap(openai_client(teacher))
    resp = client.chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, stream=stream, **extra
    )
    return what_the_app_got(resp, stream)


def via_async_wrapper(
    c: ShadowCollector, teacher: ModelServer, extra: dict[str, Any], stream: bool
) -> Any:
    async def run() -> Any:
        raw = openai.AsyncOpenAI(base_url=teacher.openai_url, api_key="sk-test", max_retries=0)
        resp = await c.wrap(raw).chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, stream=stream, **extra
        )
        if stream:
            return what_the_app_got([chunk async for chunk in resp], True)
        return what_the_app_got(resp, False)

    return asyncio.run(run())


def via_proxy(c: ShadowCollector, teacher: ModelServer, extra: dict[str, Any], stream: bool) -> Any:
    running = RunningProxy(c.settings, c)
    try:
        resp = running.client().chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, stream=stream, **extra
        )
        got = what_the_app_got(resp, stream)
        metrics = httpx.get(f"{running.url}/metrics").text
        return got, metrics
    finally:
        running.close()


WAYS: dict[str, Callable[..., Any]] = {
    "sync wrapper": via_sync_wrapper,
    "async wrapper": via_async_wrapper,
    "proxy": via_proxy,
}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "streamed"])
@pytest.mark.parametrize("kind", list(REQUESTS))
@pytest.mark.parametrize("way", list(WAYS))
def test_a_rollout_at_100_percent_never_serves_a_tools_or_schema_request_by_the_student(
    tmp_path: Path,
    teacher: ModelServer,
    student: ModelServer,
    route_to_student,  # noqa: ANN001
    way: str,
    kind: str,
    stream: bool,
) -> None:
    route_to_student(stage=100, bucket=3.0)
    env = {"SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url, "SHADOWTUTOR_TEACHER_API_KEY": "k"}
    with collector_for(tmp_path, student, env) as c:
        got = WAYS[way](c, teacher, REQUESTS[kind], stream)
        if way == "proxy":
            got, metrics = got
            assert f'shadowtutor_teacher_only_total{{reason="kind: {kind}"}} 1.0' in metrics
        logged = records(c, expect=1)
        stats = c.stats()
    assert got == (TEACHER_CALL if kind == "tools" else TEACHER_JSON)
    assert stats["served_by_student"] == 0
    assert stats["teacher_only"] == 1
    assert stats["teacher_only_by_reason"] == {f"kind: {kind}": 1}
    assert teacher.count("/v1/chat/completions") == 1
    (record,) = logged
    assert record["routing"]["served_by"] == "teacher"
    assert record["routing"]["stage"] == 100
    assert record["routing"]["reason"] == f"kind: {kind}"
    assert record["schema_version"] == 3 and record["protocol"] == "openai.chat"
    assert record["request"]["kind"] == kind
    assert record["similarity"]["score"] is None  # never a similarity of prose to a call
    if kind == "tools":
        assert record["request"]["tools"] == ["book_table"]
        assert record["request"]["tools_hash"] and record["request"]["schema_hash"] is None
        (call,) = record["teacher"]["tool_calls"]
        assert call["name"] == "book_table"
        assert isinstance(call["arguments"], str)  # exactly as the teacher sent them
        assert (call["name"], json.loads(call["arguments"])) == TEACHER_CALL
        assert record["teacher"]["finish_reason"] == "tool_calls"
        assert record["agreement"]["kind"] == "tool_calls"
    else:
        assert record["request"]["tools"] is None and record["request"]["schema_hash"]
        assert json.loads(record["teacher"]["response"]) == TEACHER_JSON
        assert record["teacher"]["tool_calls"] is None
        assert record["agreement"]["kind"] == "json"


def test_a_plain_request_is_still_served_by_the_student_at_100_percent(
    tmp_path: Path,
    teacher: ModelServer,
    student: ModelServer,
    route_to_student,  # noqa: ANN001
) -> None:
    route_to_student(stage=100, bucket=3.0)
    env = {"SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url, "SHADOWTUTOR_TEACHER_API_KEY": "k"}
    with collector_for(tmp_path, student, env) as c:
        resp = c.wrap(openai_client(teacher)).chat.completions.create(
            model="gpt-4o-mini", messages=MSGS
        )
        stats = c.stats()
    assert resp.choices[0].message.content == "student prose"
    assert stats["served_by_student"] == 1 and stats["teacher_only"] == 0


# --- the student gets the same request, in its own API's form ------------------------------

CONVERSATION = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "book a table for two in Rome"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "book_table", "arguments": '{"city": "Rome", "people": 2}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_9", "content": "booked"},
    {"role": "user", "content": "book a table for two in Rome"},
]


def shadowed(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, env: dict[str, str], **extra: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    env = env | {
        "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
        "SHADOWTUTOR_TEACHER_API_KEY": "k",
    }
    with collector_for(tmp_path, student, env) as c:
        resp = c.wrap(openai_client(teacher)).chat.completions.create(model="gpt-4o-mini", **extra)
        if extra.get("stream"):
            list(resp)  # the app reads the stream to its end
        (record,) = records(c, expect=1)
        return record, c.stats()


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "streamed"])
def test_an_ollama_student_gets_the_tools_and_the_conversation_in_its_apis_form(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, stream: bool
) -> None:
    student.strict_ollama = True  # refuses list content and string arguments, as Ollama does
    record, stats = shadowed(
        tmp_path, teacher, student, {}, messages=CONVERSATION, tools=TOOLS, stream=stream
    )
    (path, sent) = student.requests[-1]
    assert path == "/api/chat"
    assert sent["tools"] == TOOLS
    assert sent["messages"][0]["content"] == "book a table for two in Rome"
    assert sent["messages"][0]["images"] == ["iVBORw0KGgo="]
    assert sent["messages"][1]["tool_calls"][0]["function"]["arguments"] == {
        "city": "Rome",
        "people": 2,
    }
    assert stats["student_ok"] == 1 and stats["student_errors"] == 0
    (teacher_call,) = record["teacher"]["tool_calls"]
    (student_call,) = record["student"]["tool_calls"]
    assert isinstance(teacher_call["arguments"], str)  # OpenAI: JSON text, as sent
    assert isinstance(student_call["arguments"], dict)  # Ollama: an object, as sent
    assert record["similarity"]["score"] is None
    assert record["agreement"]["kind"] == "tool_calls"
    assert record["agreement"]["score"] == 1.0


def test_an_ollama_student_gets_the_json_schema_as_its_format(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    record, _ = shadowed(tmp_path, teacher, student, {}, messages=MSGS, response_format=SCHEMA)
    (_, sent) = student.requests[-1]
    assert sent["format"] == SCHEMA["json_schema"]["schema"]
    assert json.loads(record["student"]["response"]) == TEACHER_JSON
    assert record["agreement"]["kind"] == "json"
    assert record["agreement"]["details"] == {"valid": True, "fields": 1.0}
    assert record["agreement"]["score"] == 1.0


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "streamed"])
def test_an_openai_compatible_student_gets_the_request_as_it_is(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, stream: bool
) -> None:
    student.models.append("qwen")
    env = {
        "SHADOWTUTOR_STUDENT_BACKEND": "openai",
        "SHADOWTUTOR_STUDENT_BASE_URL": student.openai_url,
        "SHADOWTUTOR_STUDENT_MODEL": "qwen",
    }
    record, _ = shadowed(
        tmp_path,
        teacher,
        student,
        env,
        messages=CONVERSATION,
        tools=TOOLS,
        tool_choice="auto",
        parallel_tool_calls=False,
        stream=stream,
    )
    (path, sent) = student.requests[-1]
    assert path == "/v1/chat/completions"
    assert sent["messages"] == CONVERSATION
    assert (sent["tools"], sent["tool_choice"], sent["parallel_tool_calls"]) == (
        TOOLS,
        "auto",
        False,
    )
    (student_call,) = record["student"]["tool_calls"]  # assembled from streamed deltas
    assert json.loads(student_call["arguments"]) == TEACHER_CALL[1]
    assert record["student"]["finish_reason"] == "tool_calls"
    assert record["agreement"]["score"] == 1.0


@pytest.mark.parametrize(
    ("feature", "extra"), [("tools", {"tools": TOOLS}), ("schema", {"response_format": SCHEMA})]
)
def test_a_student_whose_server_refuses_a_feature_is_unsupported_not_failing(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, feature: str, extra: dict[str, Any]
) -> None:
    student.refuse = {feature}
    record, stats = shadowed(tmp_path, teacher, student, {}, messages=MSGS, **extra)
    assert record["student"]["error"].startswith(f"unsupported: {feature} (")
    assert stats["student_unsupported"] == 1
    assert stats["student_errors"] == 0 and stats["breaker"] == "closed"
    assert record["agreement"]["score"] is None and record["similarity"]["score"] is None


def test_an_ollama_server_refuses_openai_shaped_messages(student: ModelServer) -> None:
    student.strict_ollama = True
    body = {"model": "llama3", "messages": CONVERSATION, "stream": False}
    resp = httpx.post(f"{student.url}/api/chat", json=body)
    assert resp.status_code == 400
    assert "cannot unmarshal array" in resp.json()["error"]
    body["messages"] = CONVERSATION[1:]
    resp = httpx.post(f"{student.url}/api/chat", json=body)
    assert resp.status_code == 400 and "cannot unmarshal string" in resp.json()["error"]


# --- every call style of the wrapped client --------------------------------------------------


class Booking(pydantic.BaseModel):
    city: str
    people: int


def test_parse_is_shadowed_and_always_served_by_the_teacher(
    tmp_path: Path,
    teacher: ModelServer,
    student: ModelServer,
    route_to_student,  # noqa: ANN001
) -> None:
    route_to_student(stage=100, bucket=3.0)
    env = {"SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url, "SHADOWTUTOR_TEACHER_API_KEY": "k"}
    with collector_for(tmp_path, student, env) as c:
        client = c.wrap(openai_client(teacher))
        resp = client.chat.completions.parse(
            model="gpt-4o-mini", messages=MSGS, response_format=Booking
        )
        (record,) = records(c, expect=1)
        stats = c.stats()
    assert resp.choices[0].message.parsed == Booking(**TEACHER_JSON)
    assert record["request"]["kind"] == "json_schema" and record["request"]["schema_hash"]
    assert json.loads(record["teacher"]["response"]) == TEACHER_JSON
    assert record["routing"]["served_by"] == "teacher"
    assert stats["teacher_only_by_reason"] == {"kind: json_schema": 1}
    (_, sent) = student.requests[-1]
    assert sent["format"]["properties"] == {
        "city": {"title": "City", "type": "string"},
        "people": {"title": "People", "type": "integer"},
    }


def test_a_plain_parse_is_held_from_the_student_by_its_call_style(
    tmp_path: Path,
    teacher: ModelServer,
    student: ModelServer,
    route_to_student,  # noqa: ANN001
) -> None:
    route_to_student(stage=100, bucket=3.0)
    env = {"SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url, "SHADOWTUTOR_TEACHER_API_KEY": "k"}
    with collector_for(tmp_path, student, env) as c:

        async def run() -> Any:
            raw = openai.AsyncOpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0)
            return await c.wrap(raw).chat.completions.parse(model="gpt-4o-mini", messages=MSGS)

        resp = asyncio.run(run())
        (record,) = records(c, expect=1)
        stats = c.stats()
    assert resp.choices[0].message.content == "echo: book a table for two in Rome"
    assert record["routing"]["reason"] == "call: parse"
    assert stats["teacher_only_by_reason"] == {"call: parse": 1}
    assert stats["served_by_student"] == 0


def test_with_options_gives_a_wrapped_client(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    env = {"SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url, "SHADOWTUTOR_TEACHER_API_KEY": "k"}
    with collector_for(tmp_path, student, env) as c:
        client = c.wrap(openai_client(teacher)).with_options(timeout=5.0)
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, tools=TOOLS)
        (record,) = records(c, expect=1)
    assert record["teacher"]["tool_calls"][0]["name"] == "book_table"


def test_raw_response_and_stream_calls_are_passed_through_counted_and_said_once(
    tmp_path: Path,
    teacher: ModelServer,
    student: ModelServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url, "SHADOWTUTOR_TEACHER_API_KEY": "k"}
    with collector_for(tmp_path, student, env) as c:
        completions = c.wrap(openai_client(teacher)).chat.completions
        for _ in range(2):
            raw = completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
            assert raw.parse().choices[0].message.content.startswith("echo:")
        with completions.stream(model="gpt-4o-mini", messages=MSGS) as events:
            final = events.get_final_completion()
        assert final.choices[0].message.content.startswith("echo:")
        logged = records(c)
        stats = c.stats()
    assert logged == [] and stats["unrecorded_calls"] == 3
    warned = [r.getMessage() for r in caplog.records if "not recorded" in r.getMessage()]
    assert len(warned) == 2  # once per call style
    assert "with_raw_response.create()" in warned[0] and "stream()" in warned[1]


# --- served by kind: a real rollout in the database, read by routing -------------------------

CATEGORY = "casual"  # what the collector detects for MSGS
USER = "diner-7"  # a user key: routing keeps a user with the same model


def passing(kind: str) -> Aggregate:
    """A (category, kind) cell whose criteria all pass."""
    cell = agg(scores={})
    cell.similarity = {}
    if kind == "tools":
        cell.tools_compared = cell.tools_agreed = cell.pairs
    else:
        cell.json_checked = cell.json_valid = cell.pairs
    return cell


@pytest.fixture
def released(tmp_path: Path) -> Iterator[Callable[..., None]]:
    """``released(*kinds)``: a rollout at 100 % of CATEGORY in the database of the
    collectors ``collector_for(tmp_path, ...)`` builds, after an approved GO for its plain
    requests and for ``kinds`` (each with its own passing criteria); routing reads it."""
    routing.clear_cache()

    def release(*kinds: str) -> None:
        url = Settings.load({"SHADOWTUTOR_HOME": str(tmp_path / "home")}).db_url
        db.upgrade(url)
        plain = agg()
        plain.kinds = {k: passing(k) for k in kinds}
        cfg = config(
            eligibility={"categories": [CATEGORY]},
            rollout={"salt": "s", "stages": [{"percent": 0}, {"percent": 100}]},
        )
        decision = criteria.decide(cfg, Window(None, None, {CATEGORY: plain}))
        assert decision.eligible == (CATEGORY,)
        assert decision.eligible_kinds == ({CATEGORY: kinds} if kinds else {})
        with db.session_scope(url) as session:
            admin = account(session, "admin")
            row = decisions.record(session=session, decision=decision, actor_id=SYSTEM)
            decisions.approve(session=session, decision_id=row.id, actor_id=admin)
            rollout.advance(session=session, config=cfg, actor_id=admin, served_at_stage=0)
            assert rollout.state(session=session).kinds == {CATEGORY: kinds} if kinds else True
        assert routing.wait_ready(url)

    yield release
    routing.clear_cache()


def tools_call(c: ShadowCollector, teacher: ModelServer, way: str, stream: bool) -> Any:
    """A tools request of USER through ``way``; the response as the official client read it
    (for a stream: the chunks), and for the proxy its metrics."""
    kw: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MSGS, "tools": TOOLS, "user": USER}
    if way == "proxy":
        running = RunningProxy(c.settings, c)
        try:
            resp = running.client().chat.completions.create(stream=stream, **kw)
            got = list(resp) if stream else resp
            return got, httpx.get(f"{running.url}/metrics").text
        finally:
            running.close()
    resp = c.wrap(openai_client(teacher)).chat.completions.create(stream=stream, **kw)
    return (list(resp) if stream else resp), ""


def env_of(teacher: ModelServer) -> dict[str, str]:
    return {"SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url, "SHADOWTUTOR_TEACHER_API_KEY": "k"}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "streamed"])
@pytest.mark.parametrize("way", ["wrapper", "proxy"])
def test_with_a_plain_go_only_a_tools_request_gets_the_teachers_tool_call(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, released, way: str, stream: bool
) -> None:
    released()  # a GO for plain requests only, at 100 %
    with collector_for(tmp_path, student, env_of(teacher)) as c:
        got, metrics = tools_call(c, teacher, way, stream)
        plain = c.wrap(openai_client(teacher)).chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, user=USER
        )
        stats = c.stats()
    assert what_the_app_got(got, stream) == TEACHER_CALL
    first = got[0] if stream else got
    assert not first.id.startswith("chatcmpl-st-") and first.model == "gpt-4o-mini"
    assert plain.choices[0].message.content == "student prose"  # the rollout is live
    assert stats["served_by_student"] == 1  # the plain request only
    assert stats["teacher_only_by_reason"] == {"kind: tools": 1}
    if way == "proxy":
        assert 'shadowtutor_teacher_only_total{reason="kind: tools"} 1.0' in metrics


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "streamed"])
@pytest.mark.parametrize("way", ["wrapper", "proxy"])
def test_with_its_own_go_the_student_serves_a_tools_request_as_an_openai_tool_call(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, released, way: str, stream: bool
) -> None:
    released("tools")
    with collector_for(tmp_path, student, env_of(teacher)) as c:
        got, _ = tools_call(c, teacher, way, stream)
        schema_resp = c.wrap(openai_client(teacher)).chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, response_format=SCHEMA, user=USER
        )
        logged = records(c, expect=2)
        stats = c.stats()
    assert stats["served_by_student"] == 1
    assert stats["teacher_only_by_reason"] == {"kind: json_schema": 1}  # no GO of its own
    assert json.loads(schema_resp.choices[0].message.content) == TEACHER_JSON
    if stream:
        assert got[0].id.startswith("chatcmpl-st-") and got[-1].choices[0].finish_reason == (
            "tool_calls"
        )
        assert what_the_app_got(got, True) == TEACHER_CALL
    else:
        assert got.id.startswith("chatcmpl-st-") and got.model == "llama3"
        choice = got.choices[0]
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls  # parsed by the official client
        assert call.type == "function" and call.id
        assert call.function.name == "book_table"
        assert isinstance(call.function.arguments, str)  # OpenAI's form: JSON text
        assert json.loads(call.function.arguments) == TEACHER_CALL[1]
    served = next(r for r in logged if r["request"]["kind"] == "tools")
    assert served["routing"]["served_by"] == "student" and served["routing"]["reason"] is None
    assert served["agreement"]["kind"] == "tool_calls"


def test_a_student_refusing_tools_is_unsupported_and_leaves_the_success_rate_alone(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    student.refuse = {"tools"}  # its server answers 400 to a request with tools
    with collector_for(tmp_path, student, env_of(teacher)) as c:
        client = c.wrap(openai_client(teacher))
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, tools=TOOLS)
        logged = records(c, expect=6)
        settings = c.settings
    assert sum(r["student"]["error"] is not None for r in logged) == 3
    now = datetime.now(UTC)
    con = evidence.connect(settings.log_path)
    days = evidence.log_days(con, now - timedelta(days=1), now + timedelta(hours=1), config())
    cell = Aggregate()
    for by_cat in days.values():
        cell.add(by_cat[CATEGORY])
    assert (cell.pairs, cell.successes, cell.unsupported) == (3, 3, 0)  # plain requests
    tools = cell.kinds["tools"]
    assert (tools.pairs, tools.successes, tools.unsupported) == (0, 0, 3)
    decision = criteria.decide(
        config(eligibility={"categories": [CATEGORY]}), Window(None, None, {CATEGORY: cell})
    )
    success = {(c.kind, c.key): c for c in decision.criteria}[("tools", "success_rate")]
    assert success.status != "FAIL" and success.n == 0
    assert "3 unsupported requests counted apart, not as failures" in success.method
    plain = {(c.kind, c.key): c for c in decision.criteria}[("plain", "success_rate")]
    assert plain.estimate == 1.0 and plain.n == 3

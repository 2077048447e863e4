"""Every answer has an id the app can use (issue 30): the proxy's ``X-ShadowTutor-Request-Id``
header on chat (complete and streamed), /v1/messages and /v1/responses, the student's answers
after a GO too; the wrapper's ``shadowtutor.request_id(response)`` on what it returns (sync,
async, streamed). The id is the record's ``request_id``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

import shadowtutor
from shadowtutor.collect.request_ids import HEADER
from shadowtutor.config import Settings
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import RunningProxy, collector_for, records

MODEL = "claude-haiku-4-5"
TEACHER = {"models": [MODEL, "gpt-4o-mini"]}
MSGS = [{"role": "user", "content": "hello, how are you today"}]

pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
def running(tmp_path: Path, teacher: ModelServer, student: ModelServer) -> Iterator[RunningProxy]:
    settings = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
            "SHADOWTUTOR_TEACHER_API_KEY": "k",
            "SHADOWTUTOR_ANTHROPIC_BASE_URL": teacher.url,
            "SHADOWTUTOR_ANTHROPIC_API_KEY": "k",
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_STUDENT_TIMEOUT_S": "2",
        }
    )
    run = RunningProxy(settings)
    yield run
    run.close()


def _ids_match_records(ids: list[str], recs: list[dict]) -> None:
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids)
    assert sorted(r["request_id"] for r in recs) == sorted(ids)


@pytest.mark.parametrize("served", ["teacher", "student"])
def test_the_proxy_names_every_answer(
    running: RunningProxy,
    served: str,
    route_to_student,  # noqa: ANN001
) -> None:
    if served == "student":
        route_to_student(stage=100, bucket=1.0)
    client = running.client()
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
    ids = [raw.headers[HEADER]]
    assert shadowtutor.request_id(raw) == ids[0]
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MSGS, stream=True
    ) as streamed:
        ids.append(streamed.headers[HEADER])
        assert b"[DONE]" in b"".join(streamed.iter_bytes())
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
    ids.append(shadowtutor.request_id(stream))  # the SDK's stream keeps the HTTP response
    list(stream)
    claude = anthropic.Anthropic(base_url=running.url, api_key="k", max_retries=0)
    msg = claude.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=MSGS)
    ids.append(msg.headers[HEADER])
    resp = client.responses.with_raw_response.create(model="gpt-4o-mini", input="hello there")
    ids.append(resp.headers[HEADER])
    recs = running.records(expect=len(ids))
    _ids_match_records(ids, recs)
    assert {r["routing"]["served_by"] for r in recs} == {served}


def test_a_body_the_proxy_cannot_read_still_gets_an_id(running: RunningProxy) -> None:
    resp = httpx.post(
        f"{running.url}/v1/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert len(resp.headers[HEADER]) == 32  # the teacher's answer (an error), named all the same


@pytest.mark.parametrize("served", ["teacher", "student"])
def test_the_wrapper_ties_the_id_to_what_it_returns(
    tmp_path: Path,
    teacher: ModelServer,
    student: ModelServer,
    served: str,
    route_to_student,  # noqa: ANN001
) -> None:
    if served == "student":
        route_to_student(stage=100, bucket=1.0)
    with collector_for(tmp_path, student) as c:
        client = c.wrap(openai.OpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0))
        done = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        chunks = list(stream)
        resp = client.responses.create(model="gpt-4o-mini", input="hello there")
        aclient = c.wrap(
            openai.AsyncOpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0)
        )

        async def both() -> list[str | None]:
            one = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
            astream = await aclient.chat.completions.create(
                model="gpt-4o-mini", messages=MSGS, stream=True
            )
            async for _ in astream:
                pass
            return [shadowtutor.request_id(one), shadowtutor.request_id(astream)]

        ids = [shadowtutor.request_id(x) for x in (done, stream, resp)] + asyncio.run(both())
        assert chunks and all(isinstance(i, str) for i in ids)
        assert done.model_dump() == type(done).model_validate(done.model_dump()).model_dump()
        assert "shadowtutor" not in done.model_dump_json()  # the app's object is the SDK's own
        recs = records(c, expect=len(ids))
    _ids_match_records([i for i in ids if i], recs)
    assert {r["routing"]["served_by"] for r in recs} == {served}


def test_an_object_never_returned_by_a_wrapper_has_no_id() -> None:
    assert shadowtutor.request_id(object()) is None
    assert shadowtutor.request_id({"id": "chatcmpl-1"}) is None


def test_a_wrapped_claude_client_ties_the_id_to_its_messages_and_streams(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    with collector_for(tmp_path, student) as c:
        claude = c.wrap(anthropic.Anthropic(base_url=teacher.url, api_key="k", max_retries=0))
        msg = claude.messages.create(model=MODEL, max_tokens=64, messages=MSGS)
        with claude.messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as stream:
            streamed = "".join(stream.text_stream)
            stream_id = shadowtutor.request_id(stream)
        assert streamed
        ids = [shadowtutor.request_id(msg), stream_id]
        recs = records(c, expect=2)
    _ids_match_records([i for i in ids if i], recs)
    assert None not in ids

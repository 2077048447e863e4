"""Every path the proxy does not shadow reaches the teacher unchanged (collect.forward), checked
with the official openai client against a loopback teacher."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from shadowtutor.collect.forward import path_label
from shadowtutor.config import Settings
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import RunningProxy as Running

TEACHER = {"models": ["gpt-4o-mini", "text-embedding-3-small", "gpt-3.5-turbo-instruct"]}

pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
def running(tmp_path: Path, teacher: ModelServer, student: ModelServer) -> Iterator[Running]:
    settings = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
            "SHADOWTUTOR_TEACHER_API_KEY": "sk-configured",
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
        }
    )
    run = Running(settings)
    yield run
    run.close()


def _direct(teacher: ModelServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0)


def test_embeddings_completions_and_model_details_pass_through(
    running: Running, teacher: ModelServer
) -> None:
    direct, via = _direct(teacher), running.client()
    got = via.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog"])
    want = direct.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog"])
    assert got.model_dump() == want.model_dump()
    done = via.completions.create(model="gpt-3.5-turbo-instruct", prompt="say hi")
    assert done.choices[0].text == "echo: say hi"
    streamed = via.completions.create(model="gpt-3.5-turbo-instruct", prompt="a b", stream=True)
    assert "".join(c.choices[0].text for c in streamed) == "echo: a b"
    assert via.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError, match="gpt-9"):  # the teacher's own 404
        via.models.retrieve("gpt-9")
    assert [m.id for m in via.models.list()] == TEACHER["models"]
    counts = running.collector.stats()["forwarded_by_path"]
    assert counts == {
        "/v1/embeddings": 1,
        "/v1/completions": 2,
        "/v1/models/{id}": 2,
        "/v1/models": 1,
    }
    assert running.records() == []  # nothing forwarded is shadowed
    metrics = httpx.get(f"{running.url}/metrics").text
    assert 'shadowtutor_forwarded_total{path="/v1/models/{id}"} 2.0' in metrics


def test_bytes_status_and_headers_are_the_teachers(running: Running, teacher: ModelServer) -> None:
    body = {"model": "text-embedding-3-small", "input": "x y"}
    want = httpx.post(f"{teacher.openai_url}/embeddings", json=body)
    got = httpx.post(
        f"{running.url}/v1/embeddings?trace=1",
        json=body,
        headers={"X-ShadowTutor-User": "bob", "X-Custom": "kept"},
    )
    assert got.status_code == want.status_code == 200
    assert got.content == want.content
    assert got.headers["content-type"] == want.headers["content-type"]
    seen = {k.lower(): v for k, v in teacher.headers[-1].items()}
    assert seen["x-custom"] == "kept" and seen["authorization"] == "Bearer sk-configured"
    assert teacher.requests[-1] == ("/v1/embeddings", body)
    assert not any(k.lower().startswith("x-shadowtutor") for k in seen)
    teacher.status = 503
    failed = httpx.post(f"{running.url}/v1/embeddings", json=body)
    assert failed.status_code == 503
    assert failed.content == httpx.post(f"{teacher.openai_url}/embeddings", json=body).content


def test_an_unknown_path_is_the_teachers_answer_not_the_proxys(
    running: Running, teacher: ModelServer
) -> None:
    got = httpx.post(f"{running.url}/v1/nothing/here", json={"a": 1})
    # the loopback teacher's own 404 body, not the proxy's plain-text "Not Found"
    assert got.status_code == 404 and got.json() == {"error": "no route POST /v1/nothing/here"}
    assert teacher.count("/v1/nothing/here") == 1
    outside = httpx.get(f"{running.url}/api/version")
    assert outside.json() == {"version": "0.6.3"}  # a path beside the teacher's /v1
    counts = running.collector.stats()["forwarded_by_path"]
    assert counts == {"/v1/{id}/{id}": 1, "/api/version": 1}


def test_the_teacher_down_is_a_502_naming_it(running: Running, teacher: ModelServer) -> None:
    teacher.down()
    with pytest.raises(openai.APIStatusError, match="unreachable") as info:
        running.client().embeddings.create(model="text-embedding-3-small", input="x")
    assert info.value.status_code == 502


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/v1/models/gpt-4o", "/v1/models/{id}"),
        ("/v1/files/file-abc/content", "/v1/files/{id}/content"),
        ("/v1/messages/count_tokens", "/v1/messages/count_tokens"),
        ("/v1/responses/resp_1/input_items", "/v1/responses/{id}/input_items"),
        ("/", "/"),
        ("/a/b/c/d/e/f/g/h", "/{id}/{id}/{id}/{id}/{id}/{id}/..."),
    ],
)
def test_path_labels(path: str, label: str) -> None:
    assert path_label(path) == label

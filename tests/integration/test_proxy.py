"""The OpenAI-compatible proxy, run by uvicorn on a loopback port, hit by the real openai client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from shadowtutor.config import Settings
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import RunningProxy as Running

MSGS = [{"role": "user", "content": "hello, how are you today"}]
STUDENT_SAYS = "I am fine thank you"
STUDENT = {"models": ["llama3"], "answer": STUDENT_SAYS}

pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
def running(tmp_path: Path, teacher: ModelServer, student: ModelServer) -> Iterator[Running]:
    settings = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
            "SHADOWTUTOR_TEACHER_API_KEY": "sk-configured",
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_STUDENT_TIMEOUT_S": "0.5",
        }
    )
    run = Running(settings)
    yield run
    run.close()


def test_chat_is_forwarded_unchanged_and_shadowed(running: Running, teacher: ModelServer) -> None:
    direct = openai.OpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0)
    expected = direct.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    got = running.client().chat.completions.create(
        model="gpt-4o-mini",
        messages=MSGS,
        extra_headers={
            "X-ShadowTutor-User": "bob@example.com",
            "X-ShadowTutor-Metadata": '{"app": "web"}',
        },
    )
    assert got.choices[0].message.content == expected.choices[0].message.content
    assert got.usage == expected.usage
    [rec] = running.records(expect=1)  # handed off just after the answer is sent
    assert rec["teacher"]["response"] == "echo: hello, how are you today"
    assert rec["student"]["response"] == STUDENT_SAYS
    assert rec["metadata"]["app"] == "web" and rec["user_hash"]
    assert rec["teacher"]["prompt_tokens"] == expected.usage.prompt_tokens


def test_streaming_passes_the_events_through(running: Running, teacher: ModelServer) -> None:
    body = {"model": "gpt-4o-mini", "messages": MSGS, "stream": True}
    direct = httpx.post(f"{teacher.openai_url}/chat/completions", json=body).content
    via = httpx.post(f"{running.url}/v1/chat/completions", json=body).content
    # Same events apart from the per-call id and timestamp.
    norm = [
        {k: v for k, v in json.loads(line[6:]).items() if k not in ("id", "created")}
        for line in via.split(b"\n\n")
        if line.startswith(b"data: {")
    ]
    ref = [
        {k: v for k, v in json.loads(line[6:]).items() if k not in ("id", "created")}
        for line in direct.split(b"\n\n")
        if line.startswith(b"data: {")
    ]
    assert norm == ref and via.rstrip().endswith(b"data: [DONE]")
    chunks = list(
        running.client().chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == (
        "echo: hello, how are you today"
    )
    recs = running.records(expect=2)
    assert len(recs) == 2 and all(r["teacher"]["ttft_ms"] is not None for r in recs)
    assert recs[0]["teacher"]["response"] == "echo: hello, how are you today"


def test_authorization_forwarded_or_configured(running: Running, teacher: ModelServer) -> None:
    running.client("sk-caller").chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    httpx.post(
        f"{running.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MSGS}
    )
    seen = [h.get("Authorization") or h.get("authorization") for h in teacher.headers]
    assert seen == ["Bearer sk-caller", "Bearer sk-configured"]
    assert not any(k.lower().startswith("x-shadowtutor") for h in teacher.headers for k in h)


def test_models_and_health(running: Running) -> None:
    assert [m.id for m in running.client().models.list()] == ["gpt-4o-mini"]
    running.client().chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    running.records(expect=1)  # the hand-off comes after the answer's bytes: wait, then flush
    health = httpx.get(f"{running.url}/healthz").json()
    assert health["status"] == "ok"
    assert health["collector"]["logged"] == 1 and health["collector"]["breaker"] == "closed"


def test_teacher_errors_pass_through(running: Running, teacher: ModelServer) -> None:
    teacher.status = 500
    with pytest.raises(openai.InternalServerError, match="loopback fault"):
        running.client().chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    teacher.status = None
    with pytest.raises(openai.NotFoundError, match="gpt-9"):
        running.client().chat.completions.create(model="gpt-9", messages=MSGS)
    bad = httpx.post(f"{running.url}/v1/chat/completions", content=b"{not json")
    assert bad.status_code == 400  # the teacher's own answer to a malformed request
    assert running.records() == [] and running.collector.stats()["teacher_errors"] == 3


def test_teacher_down_is_a_502_naming_it(running: Running, teacher: ModelServer) -> None:
    teacher.down()
    with pytest.raises(openai.APIStatusError, match="unreachable") as info:
        running.client().chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert info.value.status_code == 502


@pytest.mark.parametrize("fault", ["down", "slow", "status", "malformed", "cut"])
def test_student_faults_do_not_touch_the_answer(
    running: Running, student: ModelServer, fault: str
) -> None:
    {
        "down": student.down,
        "slow": lambda: setattr(student, "delay", 1.5),
        "status": lambda: setattr(student, "status", 500),
        "malformed": lambda: setattr(student, "malformed", True),
        "cut": lambda: setattr(student, "cut_after", 1),
    }[fault]()
    got = running.client().chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert got.choices[0].message.content == "echo: hello, how are you today"
    [rec] = running.records(expect=1)  # handed off just after the answer is sent
    assert rec["student"]["error"] and rec["student"]["response"] is None


@pytest.mark.parametrize("stream", [False, True])
def test_student_serves_when_routed(
    running: Running,
    teacher: ModelServer,
    route_to_student,
    stream: bool,  # noqa: ANN001
) -> None:
    route_to_student(stage=25, bucket=1.0)
    resp = running.client().chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, stream=stream
    )
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in resp if c.choices)
    else:
        text = resp.choices[0].message.content
    assert text == STUDENT_SAYS
    [rec] = running.records(expect=1)  # handed off just after the answer is sent
    assert rec["routing"]["served_by"] == "student"
    assert rec["teacher"]["response"] == "echo: hello, how are you today"


def test_a_teacher_stream_cut_mid_way_reaches_the_app_cut(
    running: Running, teacher: ModelServer
) -> None:
    teacher.cut_after = 2
    stream = running.client().chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, stream=True
    )
    with pytest.raises(openai.APIConnectionError):
        list(stream)
    assert running.records() == [] and running.collector.stats()["teacher_errors"] == 1


def test_a_teacher_stream_ending_without_finish_or_done_is_logged_as_an_error(
    running: Running, teacher: ModelServer
) -> None:
    from shadowtutor.collect.openai_shape import INCOMPLETE_STREAM

    teacher.stop_after = 3  # a clean end after two words: no finish reason, no [DONE]
    stream = running.client().chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    [rec] = running.records(expect=1)
    assert rec["teacher"]["error"] == INCOMPLETE_STREAM and rec["teacher"]["response"] == text
    assert running.collector.stats()["teacher_errors"] == 1


def test_the_conversation_header_is_stored_pseudonymised(running: Running) -> None:
    from shadowtutor.log import schema

    raw = "jane.roe@example.com"
    running.client().chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, extra_headers={"X-ShadowTutor-Conversation": raw}
    )
    [rec] = running.records(expect=1)
    assert rec["conversation_id"] == schema.pseudonymize_conversation(raw)
    assert "jane" not in json.dumps(rec)


# --- response headers: each once ------------------------------------------------------------


def _raw_headers(port: int, method: str, path: str, body: bytes = b"") -> list[tuple[str, str]]:
    """The response's header lines, read off the socket (no client merges repeats)."""
    import socket

    request = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return [(k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in head)]


@pytest.mark.parametrize("stream", [False, True])
def test_the_teachers_date_and_server_are_sent_once(
    running: Running, teacher: ModelServer, stream: bool
) -> None:
    """Issue 12 item 19: the proxy sent `date` and `server` twice (uvicorn's and the
    teacher's); now each once, the teacher's."""
    body = json.dumps({"model": "gpt-4o-mini", "messages": MSGS, "stream": stream}).encode()
    direct = dict(_raw_headers(teacher.port, "POST", "/v1/chat/completions", body))
    headers = _raw_headers(running.server.port, "POST", "/v1/chat/completions", body)
    names = [k for k, _ in headers]
    assert names.count("date") == 1 and names.count("server") == 1, headers
    assert dict(headers)["server"] == direct["server"]  # the teacher's, not uvicorn's


def test_an_answer_the_proxy_makes_has_one_date_and_server(
    running: Running, route_to_student
) -> None:  # noqa: ANN001
    route_to_student()
    body = json.dumps({"model": "gpt-4o-mini", "messages": MSGS}).encode()
    for method, path, payload in (("POST", "/v1/chat/completions", body), ("GET", "/healthz", b"")):
        names = [k for k, _ in _raw_headers(running.server.port, method, path, payload)]
        assert names.count("date") == 1 and names.count("server") == 1, (path, names)


def test_an_unexpected_error_on_the_chat_path_is_a_500_and_the_proxy_goes_on(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chat endpoint skips Starlette's router and error middleware (a fast path): an
    error it did not expect still answers 500 with the proxy's date and server, as
    Starlette's would, and the next request is served."""

    def broken(*args: object) -> None:
        raise RuntimeError("a bug on the request path")

    body = json.dumps({"model": "gpt-4o-mini", "messages": MSGS}).encode()
    monkeypatch.setattr(running.collector, "begin", broken)
    headers = dict(_raw_headers(running.server.port, "POST", "/v1/chat/completions", body))
    assert headers["server"] == "shadowtutor-proxy" and "date" in headers
    via = httpx.post(f"{running.url}/v1/chat/completions", content=body)
    assert (via.status_code, via.text) == (500, "Internal Server Error")
    monkeypatch.undo()
    ok = running.client().chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert ok.choices[0].message.content == "echo: hello, how are you today"


@pytest.mark.parametrize("messages", ["hello", {"role": "user", "content": "hello"}])
def test_messages_that_are_not_a_list_get_the_teachers_error_unshadowed(
    running: Running, teacher: ModelServer, messages: object
) -> None:
    body = {"model": "gpt-4o-mini", "messages": messages}
    direct = httpx.post(f"{teacher.openai_url}/chat/completions", json=body)
    via = httpx.post(f"{running.url}/v1/chat/completions", json=body)
    assert direct.status_code == 400  # the teacher refuses it
    assert (via.status_code, via.json()) == (400, direct.json())  # and the app gets just that
    assert running.collector.stats()["enqueued"] == 0 and running.records() == []

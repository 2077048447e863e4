"""The shadow collector and the client wrapper: real openai/ollama clients, loopback servers.

The fault matrix of the issue: whatever the student, the similarity backend or the log folder
do, the app gets exactly the teacher's answer, and the record or the counters say what
happened. Teacher errors reach the app exactly as without ShadowTutor.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from shadowtutor.backends.breaker import Breaker
from shadowtutor.collect.job import Job
from shadowtutor.collect.sampling import bucket, sampled, sampling_key
from shadowtutor.gate import routing
from shadowtutor.log import read
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import collector_for as make
from tests.support.shadow import openai_client as plain
from tests.support.shadow import records

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "ciao come stai"}]
STUDENT_SAYS = "ciao sto bene grazie"
TEACHER = {"models": ["gpt-4o-mini", "my-own-model"]}
STUDENT = {"models": ["llama3"], "answer": STUDENT_SAYS}

pytestmark = pytest.mark.usefixtures("home")


def ask(client: Any, text: str = "ciao come stai", **kw: Any) -> Any:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    return client.chat.completions.create(model="gpt-4o-mini", messages=messages, **kw)


def strip(chunk: Any) -> dict[str, Any]:
    d = chunk.model_dump()
    d.pop("id"), d.pop("created")
    return d


# --- the happy path -----------------------------------------------------------------------------


def test_wrapped_client_returns_the_teacher_response_and_logs_the_pair(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    with make(tmp_path, student) as c:
        client = c.wrap(plain(teacher))
        expected = ask(plain(teacher))
        got = ask(client, shadow={"user": "ann@example.com", "metadata": {"prompt_id": "p1"}})
        assert type(got) is openai.types.chat.ChatCompletion
        assert strip(got) == strip(expected)
        [rec] = records(c)
    assert rec["teacher"]["response"] == "echo: ciao come stai"
    assert rec["student"]["response"] == STUDENT_SAYS
    assert rec["student"]["provider"] == "ollama" and rec["student"]["cost_usd"] == 0.0
    assert rec["teacher"]["cost_usd"] > 0 and rec["teacher"]["price_version"]
    assert rec["teacher"]["latency_ms"] > 0 and rec["student"]["ttft_ms"] is not None
    assert rec["similarity"]["method"] == "lexical" and 0 < rec["similarity"]["score"] < 1
    assert (rec["language"], rec["category"]) == ("it", "greeting")
    assert rec["metadata"]["detected"] == ["language", "category"]
    assert rec["metadata"]["prompt_id"] == "p1"
    assert rec["user_hash"] and "ann" not in rec["user_hash"]
    assert rec["routing"]["served_by"] == "teacher"
    # the shadow argument never reaches the API
    assert all("shadow" not in body for _, body in teacher.requests)


def test_streaming_gives_the_app_the_exact_chunks(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    with make(tmp_path, student) as c:
        expected = [strip(x) for x in ask(plain(teacher), stream=True)]
        with ask(c.wrap(plain(teacher)), stream=True) as stream:
            got = [strip(x) for x in stream]
        assert got == expected
        [rec] = records(c)
    assert rec["teacher"]["response"] == "echo: ciao come stai"
    assert rec["teacher"]["ttft_ms"] is not None
    assert rec["metadata"]["usage_estimated"] == ["teacher"]  # the app asked for no usage block


def test_streaming_with_usage_block_is_not_estimated(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    with make(tmp_path, student) as c:
        chunks = list(
            ask(c.wrap(plain(teacher)), stream=True, stream_options={"include_usage": True})
        )
        assert chunks[-1].usage is not None
        [rec] = records(c)
    assert "usage_estimated" not in rec["metadata"]
    assert rec["teacher"]["completion_tokens"] == 4


def test_caller_language_and_category_win(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    with make(tmp_path, student) as c:
        ask(c.wrap(plain(teacher)), shadow={"language": "fr", "category": "support"})
        [rec] = records(c)
    assert (rec["language"], rec["category"]) == ("fr", "support")
    assert "detected" not in rec["metadata"]


def test_async_client_plain_and_streaming(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    async def run(client: Any) -> tuple[Any, list[Any]]:
        one = await ask(client)
        stream = await ask(client, "hello there my friend", stream=True)
        chunks = [x async for x in stream]
        return one, chunks

    with make(tmp_path, student) as c:
        raw = openai.AsyncOpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0)
        one, chunks = asyncio.run(run(c.wrap(raw)))
        assert one.choices[0].message.content == "echo: ciao come stai"
        assert "".join(x.choices[0].delta.content or "" for x in chunks if x.choices) == (
            "echo: hello there my friend"
        )
        recs = records(c)
    assert [r["student"]["response"] for r in recs] == [STUDENT_SAYS, STUDENT_SAYS]
    assert {r["language"] for r in recs} == {"it", "en"}


def test_everything_else_on_the_client_is_the_original(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    with make(tmp_path, student) as c:
        client = c.wrap(plain(teacher))
        assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "my-own-model"]
        assert client.api_key == "sk-test"
        assert client.unwrapped.base_url == plain(teacher).base_url
    with pytest.raises(TypeError, match="openai.OpenAI"):
        c.wrap(object())


# --- student faults: the app gets the teacher's answer, the record says what happened ------------

FAULTS = {
    "down": (lambda s: s.down(), "unavailable"),
    "slower than the timeout": (lambda s: setattr(s, "delay", 1.5), "timeout"),
    "http 500": (lambda s: setattr(s, "status", 500), "http_error"),
    "malformed json": (lambda s: setattr(s, "malformed", True), "protocol_error"),
    "stream cut mid-way": (lambda s: setattr(s, "cut_after", 1), "protocol_error"),
    "model not pulled": (lambda s: s.models.clear(), "model_not_found"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_student_faults_never_reach_the_app(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, fault: str, stream: bool
) -> None:
    apply, kind = FAULTS[fault]
    apply(student)
    with make(tmp_path, student) as c:
        start = time.perf_counter()
        resp = ask(c.wrap(plain(teacher)), stream=stream)
        text = (
            "".join(x.choices[0].delta.content or "" for x in resp)
            if stream
            else resp.choices[0].message.content
        )
        assert time.perf_counter() - start < 1.0  # the student's delay is not the app's
        assert text == "echo: ciao come stai"
        [rec] = records(c)
        stats = c.stats()
    assert rec["teacher"]["response"] == "echo: ciao come stai"
    assert rec["student"]["response"] is None
    assert rec["student"]["error"].startswith(kind + ":")
    assert rec["similarity"] == {"method": "lexical", "score": None}
    assert stats["student_errors"] == 1 and stats["logged"] == 1
    assert stats["student_timeouts"] == (1 if kind == "timeout" else 0)


def test_log_folder_unwritable_then_fixed_loses_nothing(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    c = make(tmp_path, student, log_dir=blocker / "logs")
    client = c.wrap(plain(teacher))
    for i in range(3):
        assert ask(client, f"question {i}").choices[0].message.content == f"echo: question {i}"
    assert c.flush(10) is False
    stats = c.stats()
    assert stats["write_errors"] >= 1 and stats["unwritten"] == 3 and stats["logged"] == 0
    assert "not-a-folder" in stats["last_error"]
    blocker.unlink()  # the operator fixes the folder; the kept records are written
    assert c.flush(10) is True
    assert c.stats()["logged"] == 3 and c.stats()["lost"] == 0
    c.close()
    assert len(list(read.iter_records(blocker / "logs"))) == 3


def test_full_queue_drops_and_counts_without_blocking(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    student.delay = 0.3  # the only worker is busy; the queue of one fills up
    with make(
        tmp_path, student, {"SHADOWTUTOR_STUDENT_TIMEOUT_S": "2"}, workers=1, queue_size=1
    ) as c:
        client = c.wrap(plain(teacher))
        answers = [ask(client, f"q{i}").choices[0].message.content for i in range(6)]
        assert answers == [f"echo: q{i}" for i in range(6)]
        stats = c.stats()
        assert stats["dropped"] >= 3
        assert stats["enqueued"] + stats["dropped"] == 6
        assert len(records(c)) == stats["enqueued"]


def test_breaker_opens_then_probes_and_closes(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    env = {"SHADOWTUTOR_BREAKER_FAILURES": "2", "SHADOWTUTOR_BREAKER_COOLDOWN_S": "1.0"}
    student.down()
    with make(tmp_path, student, env, workers=1) as c:
        client = c.wrap(plain(teacher))
        for i in range(4):
            ask(client, f"q{i}")
            c.flush()
        assert c.stats()["breaker"] == "open"
        errors = [r["student"]["error"] for r in records(c)]
        assert errors[:2] == [errors[0]] * 2 and errors[0].startswith("unavailable")
        assert errors[2:] == ["circuit breaker open"] * 2
        assert c.stats()["breaker_skipped"] == 2
        student.up()
        time.sleep(1.05)
        ask(client, "after the cooldown")
        c.flush()
        assert c.stats()["breaker"] == "closed"
        assert records(c)[-1]["student"]["response"] == STUDENT_SAYS


@pytest.mark.parametrize("fault", ["status", "cut"])
def test_teacher_errors_reach_the_app_unchanged(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, fault: str
) -> None:
    with make(tmp_path, student) as c:
        client = c.wrap(plain(teacher))
        if fault == "status":
            teacher.status = 500
            with pytest.raises(openai.InternalServerError) as wrapped:
                ask(client)
            with pytest.raises(openai.InternalServerError) as bare:
                ask(plain(teacher))
            assert str(wrapped.value) == str(bare.value)
        else:
            teacher.cut_after = 2
            with pytest.raises(openai.APIConnectionError):
                list(ask(client, stream=True))
        teacher.reset()
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="gpt-9", messages=MSGS)
        assert records(c) == []
        assert c.stats()["teacher_errors"] == 2


@pytest.mark.parametrize(
    "messages",
    ["ciao come stai", {"role": "user", "content": "ciao"}, None],
    ids=["string", "dict", "null"],
)
def test_messages_that_are_not_a_list_get_the_teachers_own_error(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, messages: Any
) -> None:
    """Issue 12 item 19: a string (or a dict) was turned into a list of characters (keys):
    the app must get exactly what the unwrapped client raises, and nothing is shadowed."""
    with make(tmp_path, student) as c:
        client = c.wrap(plain(teacher))
        with pytest.raises(openai.BadRequestError) as bare:
            plain(teacher).chat.completions.create(model="gpt-4o-mini", messages=messages)
        with pytest.raises(openai.BadRequestError) as wrapped:
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        assert str(wrapped.value) == str(bare.value)
        assert wrapped.value.body == bare.value.body
        sent = [b["messages"] for p, b in teacher.requests if p == "/v1/chat/completions"]
        assert sent == [messages, messages]  # the teacher got the request as the app wrote it
        assert records(c) == [] and c.stats()["enqueued"] == 0
    assert student.count("/api/chat") == 0


# --- costs --------------------------------------------------------------------------------------


def test_unknown_teacher_model_gets_no_cost_and_a_count(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    with make(tmp_path, student) as c:
        c.wrap(plain(teacher)).chat.completions.create(model="my-own-model", messages=MSGS)
        [rec] = records(c)
        assert c.stats()["unknown_models"] == {"my-own-model": 1}
    assert rec["teacher"]["cost_usd"] is None and rec["teacher"]["price_version"] is None
    assert rec["metadata"]["cost_unknown"] == ["teacher"]


def test_openai_compatible_student_is_priced_by_the_table(
    tmp_path: Path, teacher: ModelServer
) -> None:
    env = {
        "SHADOWTUTOR_STUDENT_BACKEND": "openai",
        "SHADOWTUTOR_STUDENT_BASE_URL": teacher.openai_url,
        "SHADOWTUTOR_STUDENT_MODEL": "gpt-4o-mini",
    }
    with make(tmp_path, teacher, env) as c:
        ask(c.wrap(plain(teacher)))
        [rec] = records(c)
    assert rec["student"]["provider"] == "openai-compatible"
    assert rec["student"]["cost_usd"] == rec["teacher"]["cost_usd"] > 0


# --- sampling and eligibility --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "percent", "expected"),
    [("c:any", 100, True), ("c:any", 0, False), ("", 100, True), ("", 0, False)],
)
def test_sampled_edges(key: str, percent: float, expected: bool) -> None:
    assert sampled(key, percent) is expected


def test_sampling_is_stable_and_close_to_the_percentage() -> None:
    keys = [f"c:{i}" for i in range(20_000)]
    share = sum(sampled(k, 25) for k in keys) / len(keys)
    assert 0.23 < share < 0.27
    assert [sampled(k, 25) for k in keys[:100]] == [sampled(k, 25) for k in keys[:100]]
    assert all(sampled(k, 50) for k in keys[:2000] if sampled(k, 25))  # 25 % ⊂ 50 %
    assert 0 <= bucket("x") < 100


def test_a_conversation_is_sampled_on_every_turn() -> None:
    first = [{"role": "user", "content": "hi"}]
    later = first + [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}]
    assert sampling_key(first, None, None) == sampling_key(later, None, None)
    assert sampling_key(first, "conv-1", "u") == "c:conv-1"


def test_sample_percent_zero_shadows_nothing(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    with make(tmp_path, student, {"SHADOWTUTOR_SAMPLE_PERCENT": "0"}) as c:
        assert ask(c.wrap(plain(teacher))).choices[0].message.content == "echo: ciao come stai"
        assert records(c) == [] and c.stats()["not_sampled"] == 1
    assert student.count("/api/chat") == 0


def test_only_eligible_categories_are_shadowed(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    with make(tmp_path, student, {"SHADOWTUTOR_ELIGIBLE_CATEGORIES": "greeting, casual"}) as c:
        client = c.wrap(plain(teacher))
        ask(client, "ciao!")
        ask(client, "I need a refund for my order")
        [rec] = records(c)
        assert rec["category"] == "greeting" and c.stats()["ineligible"] == 1


# --- routing seam ---------------------------------------------------------------------------------


@pytest.fixture
def student_serves(route_to_student) -> None:  # noqa: ANN001
    route_to_student(stage=10, bucket=3.0)


@pytest.mark.usefixtures("student_serves")
@pytest.mark.parametrize("stream", [False, True])
def test_student_serves_when_routed(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, stream: bool
) -> None:
    with make(tmp_path, student) as c:
        resp = ask(c.wrap(plain(teacher)), stream=stream, shadow={"user": "u1"})
        if stream:
            chunks = list(resp)
            assert isinstance(chunks[0], openai.types.chat.ChatCompletionChunk)
            text = "".join(x.choices[0].delta.content or "" for x in chunks if x.choices)
        else:
            assert isinstance(resp, openai.types.chat.ChatCompletion)
            text = resp.choices[0].message.content
        assert text == STUDENT_SAYS
        [rec] = records(c)
    assert rec["routing"] == {
        "served_by": "student",
        "stage": 10,
        "bucket": 3.0,
        "eligible": True,
        "reason": None,
        "router_version": None,
        "router_score": None,
        "router_threshold": None,
        "validator_score": None,
        "validator_threshold": None,
    }
    assert rec["teacher"]["response"] == "echo: ciao come stai"  # asked in the background
    assert teacher.count("/v1/chat/completions") == 1


@pytest.mark.usefixtures("student_serves")
def test_student_failure_falls_back_to_the_teacher(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    student.status = 500
    with make(tmp_path, student) as c:
        assert ask(c.wrap(plain(teacher))).choices[0].message.content == "echo: ciao come stai"
        [rec] = records(c)
        assert c.stats()["student_fallbacks"] == 1
    assert rec["routing"]["served_by"] == "teacher"
    assert rec["student"]["error"].startswith("http_error")
    assert rec["metadata"]["fallback"] == rec["student"]["error"]
    assert student.count("/api/chat") == 1  # not asked a second time in the background


def test_a_broken_router_means_the_teacher(
    tmp_path: Path, teacher: ModelServer, student: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: Any) -> routing.Route:  # noqa: ARG001
        raise RuntimeError("no rollout state")

    monkeypatch.setattr(routing, "route", broken)
    with make(tmp_path, student) as c:
        assert ask(c.wrap(plain(teacher))).choices[0].message.content == "echo: ciao come stai"
        assert c.stats()["route_errors"] == 1 and len(records(c)) == 1


# --- lifecycle and parts ------------------------------------------------------------------


def test_close_drains_the_queue(tmp_path: Path, student: ModelServer) -> None:
    c = make(tmp_path, student, flush_interval_s=60)
    for i in range(20):
        c.submit(Job(messages=MSGS, teacher={"model": "gpt-4o-mini", "response": f"a{i}"}))
    assert c.close()
    assert len(list(read.iter_records(c.log_dir))) == 20
    assert c.submit(Job(messages=MSGS)) is False  # closed: counted as dropped, never raised


def test_breaker_state_machine() -> None:
    now = [0.0]
    b = Breaker(2, 10, clock=lambda: now[0])
    b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    now[0] = 10
    assert b.state == "half-open" and b.allow() and not b.allow()  # one probe only
    b.failure()
    assert b.state == "open" and b.opened_count == 2
    now[0] = 20
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow()


def test_interpreter_exit_flushes_what_is_queued(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    log_dir = tmp_path / "exit-logs"
    script = f"""
import openai
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.config import Settings
s = Settings.load({{"SHADOWTUTOR_STUDENT_BASE_URL": "{student.url}"}})
c = ShadowCollector(s, log_dir="{log_dir}", flush_interval_s=60)
client = c.wrap(openai.OpenAI(base_url="{teacher.openai_url}", api_key="k"))
for i in range(5):
    msgs = [{{"role": "user", "content": f"q{{i}}"}}]
    client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
"""  # no flush, no close: the atexit hook must drain the queue
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)
    recs = list(read.iter_records(log_dir))
    assert sorted(r["teacher"]["response"] for r in recs) == [f"echo: q{i}" for i in range(5)]
    assert all(r["student"]["response"] == STUDENT_SAYS for r in recs)


def test_close_past_its_timeout_still_logs_the_teacher_answers(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    student.delay = 1.0
    c = make(tmp_path, student, {"SHADOWTUTOR_STUDENT_TIMEOUT_S": "5"}, workers=1)
    client = c.wrap(plain(teacher))
    for i in range(4):
        ask(client, f"q{i}")
    c.close(timeout=0.2)  # the one worker is still waiting for the slow student
    time.sleep(1.5)  # that worker finishes; the writer thread runs until the workers end
    recs = list(read.iter_records(c.log_dir))
    assert sorted(r["teacher"]["response"] for r in recs) == [f"echo: q{i}" for i in range(4)]
    skipped = [r for r in recs if (r["student"]["error"] or "").startswith("skipped: shut down")]
    assert len(skipped) == 3


def test_a_stream_the_app_leaves_early_is_counted_not_logged(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    with make(tmp_path, student) as c:
        with ask(c.wrap(plain(teacher)), "one two three four five", stream=True) as stream:
            first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
        assert records(c) == [] and c.stats()["streams_abandoned"] == 1

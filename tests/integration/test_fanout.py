"""Several students on the same live prompts: three loopback student servers (one fast, one
slow past its timeout, one failing) registered as students; the app's request path never waits
for any of them, every student's answer is recorded under one request id, and each has its own
breaker and its own sampling share."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from shadowtutor import db, students
from shadowtutor.accounts.permissions import SYSTEM
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.collect.work import BREAKER_OPEN
from shadowtutor.config import Settings
from shadowtutor.log import schema
from shadowtutor.students.fanout import share_takes
from shadowtutor.students.registry import StudentSpec
from shadowtutor.tables import Student
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import openai_client, records

MSGS = [{"role": "user", "content": "hello, how are you today?"}]


def _settings(tmp_path: Path, **env: str) -> Settings:
    s = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "SHADOWTUTOR_BREAKER_FAILURES": "3",
            "SHADOWTUTOR_BREAKER_COOLDOWN_S": "60",
        }
        | env
    )
    db.upgrade(s.db_url)
    return s


def _register(s: Settings, name: str, server: ModelServer, **kw: Any) -> None:
    with db.session_scope(s.db_url) as session:
        students.add(
            session=session,
            actor_id=SYSTEM,
            name=name,
            backend="ollama",
            base_url=server.url,
            model=server_model(server),
            **kw,
        )


def server_model(server: ModelServer) -> str:
    return next(iter(server.models))


@pytest.fixture
def three() -> Any:
    with (
        ModelServer(models=["llama3.1:8b"], answer="fast answer") as fast,
        ModelServer(models=["qwen2.5:7b"], answer="slow answer", delay=1.5) as slow,
        ModelServer(models=["mistral:7b"], status=500) as failing,
    ):
        yield fast, slow, failing


def test_three_students_off_the_request_path_each_recorded(tmp_path: Path, three: Any) -> None:
    fast, slow, failing = three
    s = _settings(tmp_path)
    _register(s, "llama", fast)
    _register(s, "qwen", slow, timeout_s=0.5)
    _register(s, "mistral", failing)
    with ModelServer(models=["gpt-4o-mini"], answer="teacher answer") as teacher:
        c = ShadowCollector(s, workers=1)  # jobs one after another: breakers count exactly
        try:
            client = c.wrap(openai_client(teacher))
            for i in range(5):
                out = client.chat.completions.create(
                    model="gpt-4o-mini", messages=MSGS, user=f"user-{i}"
                )
                assert out.choices[0].message.content == "teacher answer"
            # The app has all five answers while the slow student's first one is not in yet:
            # the request path waited for no student.
            assert c.stats()["logged"] == 0
            logged = records(c, expect=5)
        finally:
            c.close()
    assert len(logged) == 15
    by_request: dict[str, list[dict[str, Any]]] = {}
    for r in logged:
        assert r["schema_version"] == schema.SCHEMA_VERSION == 3
        by_request.setdefault(r["request_id"], []).append(r)
    assert len(by_request) == 5
    for rid, group in by_request.items():
        assert sorted(r["student_name"] for r in group) == ["llama", "mistral", "qwen"]
        assert [schema.is_primary(r) for r in group].count(True) == 1
        named = {r["student_name"]: r["student"] for r in group}
        assert named["llama"]["response"] == "fast answer" and named["llama"]["error"] is None
        assert (
            named["qwen"]["error"].startswith("timeout") or named["qwen"]["error"] == BREAKER_OPEN
        )
        assert named["mistral"]["error"]
        assert len({r["id"] for r in group}) == 3 and rid in {r["id"] for r in group}
    per = c.stats()["students"]
    # Each student its own breaker: the failing one opened after 3 failures (then skipped),
    # the slow one after its 3 timeouts; the fast one never.
    assert per["llama"]["breaker"] == "closed" and per["llama"]["ok"] == 5
    assert per["mistral"]["breaker"] == "open" and per["mistral"]["errors"] == 3
    assert per["mistral"]["breaker_skipped"] == 2
    mistral = [r["student"]["error"] for r in logged if r["student_name"] == "mistral"]
    assert mistral.count(BREAKER_OPEN) == 2
    assert per["qwen"]["timeouts"] == 3 and per["qwen"]["breaker"] == "open"
    qwen = [r["student"]["error"] for r in logged if r["student_name"] == "qwen"]
    assert sum(e.startswith("timeout") for e in qwen) == 3 and qwen.count(BREAKER_OPEN) == 2
    assert fast.count("/api/chat") == 5 and failing.count("/api/chat") == 3


def test_a_students_share_sees_part_of_the_traffic(tmp_path: Path) -> None:
    s = _settings(tmp_path, SHADOWTUTOR_BREAKER_FAILURES="50")
    with (
        ModelServer(models=["llama3.1:8b"], answer="a") as full,
        ModelServer(models=["qwen2.5:7b"], answer="b") as part,
        ModelServer(models=["gpt-4o-mini"], answer="teacher") as teacher,
    ):
        _register(s, "llama", full)
        _register(s, "qwen", part, share_percent=25)
        c = ShadowCollector(s)
        try:
            client = c.wrap(openai_client(teacher))
            for i in range(80):
                msgs = [{"role": "user", "content": f"question number {i}"}]
                client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
            logged = records(c, expect=80)
        finally:
            c.close()
    names = [r["student_name"] for r in logged]
    assert names.count("llama") == 80
    assert 8 <= names.count("qwen") <= 32  # 25% of 80, give or take the hash
    assert part.count("/api/chat") == names.count("qwen")
    assert c.stats()["students"]["qwen"]["not_sampled"] == 80 - names.count("qwen")
    # every request is counted once: one primary record each
    assert sum(schema.is_primary(r) for r in logged) == 80


def _spec(name: str, share: float) -> StudentSpec:
    return StudentSpec(name, "ollama", "", "m", 1.0, share_percent=share)


@pytest.mark.parametrize("share", [10.0, 50.0, 90.0])
def test_share_is_stable_and_near_its_percent(share: float) -> None:
    keys = [f"c:{i}" for i in range(4000)]
    taken = [k for k in keys if share_takes(k, _spec("a", share))]
    assert abs(len(taken) / len(keys) * 100 - share) < 3
    assert taken == [k for k in keys if share_takes(k, _spec("a", share))]
    other = {k for k in keys if share_takes(k, _spec("b", share))}
    assert other != set(taken)  # another student's share is drawn apart


def test_no_registered_student_is_the_default_one(tmp_path: Path) -> None:
    s = _settings(tmp_path, SHADOWTUTOR_BREAKER_FAILURES="50")
    with db.session_scope(s.db_url) as session:  # a demo student is listed, never called
        session.add(Student(name="demo-qwen", backend="ollama", model="qwen", demo=True))
    with (
        ModelServer(models=["llama3"], answer="student") as student,
        ModelServer(models=["gpt-4o-mini"], answer="teacher") as teacher,
    ):
        s2 = Settings.load(
            {"SHADOWTUTOR_HOME": s.home, "SHADOWTUTOR_STUDENT_BASE_URL": student.url}
        )
        c = ShadowCollector(s2)
        try:
            c.wrap(openai_client(teacher)).chat.completions.create(
                model="gpt-4o-mini", messages=MSGS
            )
            (rec,) = records(c, expect=1)
        finally:
            c.close()
        assert rec["student_name"] == "default" and rec["request_id"] == rec["id"]
        assert rec["student"]["response"] == "student"


def test_the_routed_student_serves_and_leads_its_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shadowtutor.gate import routing

    def route(*, key: str | None, category: str | None, settings: Any = None) -> Any:
        return routing.Route("student", 10, 3.0, True, "qwen")  # qwen has the approved GO

    monkeypatch.setattr(routing, "route", route)
    s = _settings(tmp_path, SHADOWTUTOR_BREAKER_FAILURES="50")
    with (
        ModelServer(models=["llama3.1:8b"], answer="llama says") as llama,
        ModelServer(models=["qwen2.5:7b"], answer="qwen says") as qwen,
        ModelServer(models=["gpt-4o-mini"], answer="teacher") as teacher,
    ):
        _register(s, "llama", llama)
        _register(s, "qwen", qwen)
        c = ShadowCollector(s)
        deadline = time.monotonic() + 5  # the background thread reads the students
        while "qwen" not in c.fanout.names() and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            out = c.wrap(openai_client(teacher)).chat.completions.create(
                model="gpt-4o-mini", messages=MSGS, user="ann"
            )
            assert out.choices[0].message.content == "qwen says"
            logged = records(c, expect=1)
        finally:
            c.close()
    primary = [r for r in logged if schema.is_primary(r)]
    assert [r["student_name"] for r in primary] == ["qwen"]
    assert primary[0]["routing"]["served_by"] == "student"
    assert primary[0]["student"]["response"] == "qwen says"
    assert qwen.count("/api/chat") == 1  # served once, not asked again in the background
    assert {r["student_name"] for r in logged} == {"llama", "qwen"}


@pytest.mark.postgres
def test_fan_out_reads_the_registry_from_postgresql(tmp_path: Path, pg_migrated: str) -> None:
    """The same fan-out with the registry in PostgreSQL (the session's database: the rows are
    removed afterwards so no other test sees them)."""
    s = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "DATABASE_URL": pg_migrated,
            "SHADOWTUTOR_BREAKER_FAILURES": "2",
            "SHADOWTUTOR_BREAKER_COOLDOWN_S": "60",
        }
    )
    names = [f"pg-fast-{tmp_path.name}"[:60], f"pg-down-{tmp_path.name}"[:60]]
    with (
        ModelServer(models=["llama3.1:8b"], answer="fast") as fast,
        ModelServer(models=["qwen2.5:7b"], status=500) as down,
        ModelServer(models=["gpt-4o-mini"], answer="teacher") as teacher,
    ):
        _register(s, names[0], fast)
        _register(s, names[1], down, share_percent=50)
        try:
            c = ShadowCollector(s, workers=1)
            try:
                client = c.wrap(openai_client(teacher))
                for i in range(40):
                    msgs = [{"role": "user", "content": f"pg question {i}"}]
                    client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
                logged = records(c, expect=40)
            finally:
                c.close()
        finally:
            with db.session_scope(pg_migrated) as session:
                for name in names:
                    session.delete(students.get(session=session, name=name))
    per = c.stats()["students"]
    assert per[names[0]]["ok"] == 40 and per[names[0]]["breaker"] == "closed"
    assert per[names[1]]["errors"] == 2 and per[names[1]]["breaker"] == "open"
    taken = sum(r["student_name"] == names[1] for r in logged)
    assert 8 <= taken <= 32 and per[names[1]]["not_sampled"] == 40 - taken


def test_each_record_lists_only_its_own_unknown_costs(tmp_path: Path) -> None:
    """Issue 27 item 13: with two students, one student's record listed the other's unknown
    cost (``metadata.cost_unknown`` was one list shared by the records of a request)."""
    s = _settings(tmp_path, SHADOWTUTOR_BREAKER_FAILURES="50")
    with (
        ModelServer(models=["llama3.1:8b"], answer="llama says") as llama,
        ModelServer(models=["house-model-7b"], answer="vllm says") as vllm,
        ModelServer(models=["gpt-unpriced"], answer="teacher") as teacher,
    ):
        _register(s, "llama", llama)  # Ollama: free
        with db.session_scope(s.db_url) as session:  # OpenAI-compatible, no price known
            students.add(
                session=session,
                actor_id=SYSTEM,
                name="vllm",
                backend="openai",
                base_url=vllm.openai_url,
                model="house-model-7b",
            )
        c = ShadowCollector(s)
        try:
            c.wrap(openai_client(teacher)).chat.completions.create(
                model="gpt-unpriced", messages=MSGS
            )
            logged = records(c, expect=1)
        finally:
            c.close()
    unknown = {r["student_name"]: r["metadata"].get("cost_unknown") for r in logged}
    assert unknown == {"llama": ["teacher"], "vllm": ["teacher", "student"]}


def test_a_registration_reaches_a_running_collector_within_two_seconds(tmp_path: Path) -> None:
    """Issue 27 item 13: a request sent ~6 s after `students add` still went only to the
    settings' `default` student (the list was re-read in the background, after the job)."""
    from shadowtutor.students import fanout

    s = _settings(tmp_path, SHADOWTUTOR_BREAKER_FAILURES="50")
    with (
        ModelServer(models=["llama3"], answer="default says") as default,
        ModelServer(models=["qwen2.5:7b"], answer="qwen says") as qwen,
        ModelServer(models=["gpt-4o-mini"], answer="teacher") as teacher,
    ):
        s2 = Settings.load(
            {"SHADOWTUTOR_HOME": s.home, "SHADOWTUTOR_STUDENT_BASE_URL": default.url}
        )
        c = ShadowCollector(s2)
        try:
            client = c.wrap(openai_client(teacher))
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
            assert {r["student_name"] for r in records(c, expect=1)} == {"default"}
            _register(s, "qwen", qwen)
            time.sleep(fanout.REFRESH_S + 0.2)  # the documented bound, measured from here
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
            logged = records(c, expect=2)
        finally:
            c.close()
    assert [r["student_name"] for r in logged] == ["default", "qwen"]

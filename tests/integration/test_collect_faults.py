"""Records the log's own validator would reject, and raw conversation ids (issue 12: 7, 17).

Through the real wrapper and the real ``openai`` client against a loopback teacher: a call
with ``messages: []`` the teacher accepts is not logged (counted ``invalid``); a teacher
stream that ends without a finish reason or ``[DONE]`` is logged with an error, never as a
complete answer; a raw conversation id is stored pseudonymised.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest

from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.collect.job import Job
from shadowtutor.collect.openai_shape import INCOMPLETE_STREAM
from shadowtutor.config import Settings
from shadowtutor.log import ingest, read, schema
from shadowtutor.testing.modelserver import ModelServer

MSGS = [{"role": "user", "content": "ciao come stai"}]
EMAIL = "jane.roe@example.com"


@pytest.fixture(autouse=True)
def _home(home: Path) -> Path:
    return home


@pytest.fixture
def teacher() -> Iterator[ModelServer]:
    with ModelServer(models=["gpt-4o-mini"]) as srv:
        yield srv


@pytest.fixture
def student() -> Iterator[ModelServer]:
    with ModelServer(models=["llama3"], answer="ciao sto bene") as srv:
        yield srv


@pytest.fixture
def collector(tmp_path: Path, student: ModelServer) -> Iterator[ShadowCollector]:
    settings = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_STUDENT_TIMEOUT_S": "2",
        }
    )
    with ShadowCollector(settings) as c:
        yield c


def client(c: ShadowCollector, teacher: ModelServer) -> Any:
    return c.wrap(openai.OpenAI(base_url=teacher.openai_url, api_key="sk-t", max_retries=0))


def records(c: ShadowCollector) -> list[dict[str, Any]]:
    assert c.flush(10)
    return list(read.iter_records(c.log_dir))


def test_a_call_with_no_messages_is_answered_but_never_logged_invalid(
    collector: ShadowCollector, teacher: ModelServer
) -> None:
    got = client(collector, teacher).chat.completions.create(model="gpt-4o-mini", messages=[])
    assert got.choices[0].message.content is not None  # the app gets the teacher's answer
    assert records(collector) == []
    stats = collector.stats()
    assert stats["invalid"] == 1 and "messages" in stats["last_error"]
    assert read.validate_log(collector.log_dir).bad == []


def test_a_teacher_stream_that_never_finished_is_logged_as_an_error(
    collector: ShadowCollector, teacher: ModelServer
) -> None:
    teacher.stop_after = 3  # the role chunk and two words, then a clean end: no finish reason
    create = client(collector, teacher).chat.completions.create
    text = "".join(
        c.choices[0].delta.content or ""
        for c in create(model="gpt-4o-mini", messages=MSGS, stream=True)
        if c.choices
    )
    assert text.strip() == "echo: ciao"  # the app sees exactly what the teacher sent
    [rec] = records(collector)
    assert rec["teacher"]["error"] == INCOMPLETE_STREAM
    assert rec["teacher"]["response"] == text and rec["similarity"]["score"] is None
    assert collector.stats()["teacher_errors"] == 1
    teacher.stop_after = None
    list(create(model="gpt-4o-mini", messages=MSGS, stream=True))
    done = [r for r in records(collector) if r["id"] != rec["id"]]
    assert [r["teacher"]["error"] for r in done] == [None]


def test_a_raw_sse_body_without_finish_or_done_is_incomplete(collector: ShadowCollector) -> None:
    def sse(*events: bytes) -> bytes:
        return b"".join(b"data: " + e + b"\n\n" for e in events)

    part = b'{"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hal"}}]}'
    fin = b'{"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
    bodies = {
        "cut": sse(part),
        "finished": sse(part, fin),
        "done": sse(part, b"[DONE]"),
    }
    for name, body in bodies.items():
        collector.submit(
            Job(messages=MSGS, id=name, teacher_raw=body, teacher_sse=True), block=True
        )
    errors = {r["id"]: r["teacher"]["error"] for r in records(collector)}
    assert errors == {"cut": INCOMPLETE_STREAM, "finished": None, "done": None}


def test_raw_conversation_ids_are_pseudonymised_before_they_are_stored(
    collector: ShadowCollector, teacher: ModelServer
) -> None:
    create = client(collector, teacher).chat.completions.create
    for _ in range(2):
        create(model="gpt-4o-mini", messages=MSGS, shadow={"conversation_id": EMAIL})
    ids = {r["conversation_id"] for r in records(collector)}
    assert ids == {schema.pseudonymize_conversation(EMAIL)}
    [cid] = ids
    assert EMAIL not in cid and len(cid) == 16
    assert schema.pseudonymize_conversation(cid) == cid  # replaying it keeps it
    raw = b"".join(p.read_bytes() for p in read.jsonl_files(collector.log_dir))
    assert b"jane" not in raw


def test_import_pseudonymises_raw_conversation_ids(tmp_path: Path) -> None:
    rec = schema.make_record(
        messages=MSGS,
        teacher={"model": "gpt-4o", "response": "ciao"},
        conversation_id=EMAIL,
        ts=datetime(2026, 5, 1, tzinfo=UTC),
    )
    src = tmp_path / "in.jsonl"
    src.write_text(schema.dumps(rec) + "\n")
    assert ingest.import_file(src, tmp_path / "logs").imported == 1
    [got] = read.iter_records(tmp_path / "logs")
    assert got["conversation_id"] == schema.pseudonymize_conversation(EMAIL)

"""The one request path, three ways in: the same table of cases through the sync wrapper, the
async wrapper and the proxy (real openai clients, loopback servers), with the same outcome:
the answer the app reads, the records logged and the collector's counters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.log import schema
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import RunningProxy, collector_for, openai_client, records

STUDENT_SAYS = "ciao sto bene grazie"
TEACHER_SAYS = "echo: ciao come stai"
STUDENT = {"models": ["llama3"], "answer": STUDENT_SAYS}
MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "ciao come stai"}]
CONTEXT = {
    "user": "ann@example.com",
    "conversation_id": "c-7",
    "category": "support",
    "language": "fr",
    "metadata": {"prompt_id": "faq-v3"},
}
COUNTERS = (
    "enqueued dropped not_sampled ineligible logged student_ok student_errors breaker_skipped "
    "teacher_errors served_by_student student_fallbacks route_errors streams_abandoned"
).split()

pytestmark = pytest.mark.usefixtures("home")


def counters(**nonzero: int) -> dict[str, int]:
    return dict.fromkeys(COUNTERS, 0) | nonzero


def pair(**changes: Any) -> dict[str, Any]:
    """The projection of a record (see :func:`project`) of a plain shadowed call."""
    return {
        "teacher": TEACHER_SAYS,
        "student": STUDENT_SAYS,
        "student_error": None,
        "routing": ("teacher", 0),
        "user_hash": None,
        "conversation_id": None,
        "category": "greeting",
        "language": "it",
        "metadata": {"detected": ["language", "category"], "teacher_model": "gpt-4o-mini"},
    } | changes


@dataclass
class Case:
    stream: bool = False
    shadow: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)
    fault: Callable[[ModelServer, ModelServer], None] | None = None  # (teacher, student)
    routed: bool = False  # a rollout routes every request to the student
    answer: Any = TEACHER_SAYS  # what the app reads: text, or ("error", HTTP status)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=counters)
    student_calls: int = 1  # serving or shadowing, never both for one request


FALLBACK = {"detected": ["language", "category"], "teacher_model": "gpt-4o-mini"}
CASES = {
    "plain": Case(pairs=[pair()], counts=counters(enqueued=1, logged=1, student_ok=1)),
    "streamed": Case(
        stream=True,
        pairs=[pair(metadata=pair()["metadata"] | {"usage_estimated": ["teacher"]})],
        counts=counters(enqueued=1, logged=1, student_ok=1),
    ),
    "teacher error": Case(
        fault=lambda t, s: setattr(t, "status", 500),
        answer=("error", 500),
        counts=counters(teacher_errors=1),
        student_calls=0,
    ),
    "student serving": Case(
        routed=True,
        answer=STUDENT_SAYS,
        pairs=[pair(routing=("student", 10))],
        counts=counters(enqueued=1, logged=1, served_by_student=1),
    ),
    "student serving, streamed": Case(
        stream=True,
        routed=True,
        answer=STUDENT_SAYS,
        pairs=[pair(routing=("student", 10))],
        counts=counters(enqueued=1, logged=1, served_by_student=1),
    ),
    "student failing -> fallback": Case(
        routed=True,
        fault=lambda t, s: setattr(s, "status", 500),
        pairs=[
            pair(
                student=None,
                student_error="http_error",
                routing=("teacher", 10),
                metadata=FALLBACK | {"fallback": "http_error"},
            )
        ],
        counts=counters(enqueued=1, logged=1, student_fallbacks=1),
    ),
    "not sampled": Case(
        env={"SHADOWTUTOR_SAMPLE_PERCENT": "0"}, counts=counters(not_sampled=1), student_calls=0
    ),
    "not sampled, streamed": Case(
        stream=True,
        env={"SHADOWTUTOR_SAMPLE_PERCENT": "0"},
        counts=counters(not_sampled=1),
        student_calls=0,
    ),
    "shadow context": Case(
        shadow=CONTEXT,
        pairs=[
            pair(
                user_hash=schema.pseudonymize("ann@example.com"),
                conversation_id=schema.pseudonymize_conversation("c-7"),
                category="support",
                language="fr",
                metadata={"prompt_id": "faq-v3", "detected": [], "teacher_model": "gpt-4o-mini"},
            )
        ],
        counts=counters(enqueued=1, logged=1, student_ok=1),
    ),
}


def project(rec: dict[str, Any]) -> dict[str, Any]:
    """What a case checks of a record (error messages by their kind: they name the port)."""

    def kind(text: str | None) -> str | None:
        return None if text is None else text.split(":")[0]

    meta = dict(rec["metadata"])
    if "fallback" in meta:
        meta["fallback"] = kind(meta["fallback"])
    meta.setdefault("detected", [])
    return {
        "teacher": rec["teacher"]["response"],
        "student": rec["student"]["response"],
        "student_error": kind(rec["student"]["error"]),
        "routing": (rec["routing"]["served_by"], rec["routing"]["stage"]),
        "user_hash": rec["user_hash"],
        "conversation_id": rec["conversation_id"],
        "category": rec["category"],
        "language": rec["language"],
        "metadata": meta,
    }


def text_of(resp: Any, stream: bool) -> str:
    if stream:
        return "".join(c.choices[0].delta.content or "" for c in resp if c.choices)
    return resp.choices[0].message.content


# --- the three ways in -------------------------------------------------------------------------


def via_sync_wrapper(c: ShadowCollector, teacher: ModelServer, case: Case) -> Any:
    client = c.wrap(openai_client(teacher))
    extra = {"shadow": case.shadow} if case.shadow else {}
    resp = client.chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, stream=case.stream, **extra
    )
    return text_of(resp, case.stream)


def via_async_wrapper(c: ShadowCollector, teacher: ModelServer, case: Case) -> Any:
    async def run() -> str:
        raw = openai.AsyncOpenAI(base_url=teacher.openai_url, api_key="sk-test", max_retries=0)
        client = c.wrap(raw)
        extra = {"shadow": case.shadow} if case.shadow else {}
        resp = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, stream=case.stream, **extra
        )
        if case.stream:
            return "".join([x.choices[0].delta.content or "" async for x in resp if x.choices])
        return resp.choices[0].message.content

    return asyncio.run(run())


def via_proxy(c: ShadowCollector, teacher: ModelServer, case: Case) -> Any:
    running = RunningProxy(c.settings, c)
    try:
        headers = {}
        for key, header in (
            ("user", "User"),
            ("conversation_id", "Conversation"),
            ("category", "Category"),
            ("language", "Language"),
        ):
            if (case.shadow or {}).get(key):
                headers[f"X-ShadowTutor-{header}"] = case.shadow[key]  # type: ignore[index]
        if (case.shadow or {}).get("metadata"):
            headers["X-ShadowTutor-Metadata"] = json.dumps(case.shadow["metadata"])  # type: ignore[index]
        resp = running.client().chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, stream=case.stream, extra_headers=headers
        )
        return text_of(resp, case.stream)
    finally:
        running.close()


WAYS = {"sync wrapper": via_sync_wrapper, "async wrapper": via_async_wrapper, "proxy": via_proxy}


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("name", list(CASES))
def test_the_same_outcome_every_way_in(
    tmp_path: Path,
    teacher: ModelServer,
    student: ModelServer,
    route_to_student,  # noqa: ANN001
    name: str,
    way: str,
) -> None:
    case = CASES[name]
    if case.routed:
        route_to_student(stage=10, bucket=3.0)
    if case.fault:
        case.fault(teacher, student)
    env = {
        "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
        "SHADOWTUTOR_TEACHER_API_KEY": "sk-test",
    }
    with collector_for(tmp_path, student, env | case.env) as c:
        try:
            answer = WAYS[way](c, teacher, case)
        except openai.APIStatusError as exc:
            answer = ("error", exc.status_code)
        logged = records(c, expect=len(case.pairs))
        stats = c.stats()
    assert answer == case.answer
    assert [project(r) for r in logged] == case.pairs
    assert {k: stats[k] for k in COUNTERS} == case.counts
    assert student.count("/api/chat") == case.student_calls

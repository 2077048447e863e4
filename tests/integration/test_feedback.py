"""Feedback in (issue 30): an app on the proxy or the wrapper gets each answer's id and sends
its users' feedback with it (the real openai clients: sync, async, streamed); only trusted
callers are heard; unknown ids, duplicates and malformed events are counted and answered,
never silently kept or dropped; the feedback joins the pairs in DuckDB; regenerates and
abandoned conversations are recorded on their own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

import shadowtutor
from shadowtutor.collect.request_ids import HEADER
from shadowtutor.config import Settings
from shadowtutor.log import read, sql
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import RunningProxy, collector_for, records

MSGS = [{"role": "user", "content": "hello, how are you today"}]
KEY = "fb-secret"

pytestmark = pytest.mark.usefixtures("home")


def _settings(tmp_path: Path, teacher: ModelServer, student: ModelServer, **env: str) -> Settings:
    return Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
            "SHADOWTUTOR_TEACHER_API_KEY": "k",
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_STUDENT_TIMEOUT_S": "2",
        }
        | env
    )


@pytest.fixture
def running(tmp_path: Path, teacher: ModelServer, student: ModelServer) -> Iterator[RunningProxy]:
    run = RunningProxy(_settings(tmp_path, teacher, student))
    yield run
    run.close()


def joined(log_dir: Path) -> list[tuple]:
    con = sql.connect(log_dir)
    read.create_views(con, log_dir)
    return con.execute(
        "SELECT f.kind, f.value, f.source, p.served_by, p.is_primary FROM feedback f "
        "JOIN pairs p USING (request_id) ORDER BY f.ts"
    ).fetchall()


def test_an_app_on_the_proxy_sends_feedback_by_the_answers_id(running: RunningProxy) -> None:
    client = running.client()
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
    rid = raw.headers[HEADER]
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
    streamed = shadowtutor.request_id(stream)
    list(stream)

    async def async_id() -> str | None:
        aclient = running.client(cls=openai.AsyncOpenAI)
        araw = await aclient.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MSGS
        )
        return araw.headers.get(HEADER)

    aid = asyncio.run(async_id())
    url = f"{running.url}/v1/feedback"
    first = httpx.post(url, json={"request_id": rid, "kind": "thumbs", "value": "down"})
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    assert first.json()["matched"] is True
    assert httpx.post(url, json={"request_id": rid, "kind": "thumbs", "value": -1}).json() == {
        "status": "duplicate", "id": first.json()["id"], "matched": True,
    }  # fmt: skip
    batch = httpx.post(
        url,
        json=[
            {"request_id": streamed, "kind": "rating", "value": 5},
            {"request_id": aid, "kind": "correction", "value": "Fine, thanks!", "comment": "x"},
            {"request_id": "f" * 32, "kind": "flag", "value": "spam"},  # an id never answered
            {"request_id": rid, "kind": "thumbs"},  # no value
        ],
    )
    assert batch.status_code == 200
    assert [r["status"] for r in batch.json()["results"]] == [
        "accepted", "accepted", "accepted", "malformed",
    ]  # fmt: skip
    assert batch.json()["results"][2]["matched"] is False
    bad = httpx.post(url, content=b"{oops", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"] == "the body is not JSON"
    health = httpx.get(f"{running.url}/healthz").json()["collector"]["feedback"]
    assert {k: health[k] for k in ("accepted", "duplicate", "malformed", "unknown_id")} == {
        "accepted": 4, "duplicate": 1, "malformed": 2, "unknown_id": 1,
    }  # fmt: skip
    metrics = httpx.get(f"{running.url}/metrics").text
    assert 'shadowtutor_feedback_events_total{outcome="malformed"} 2.0' in metrics
    running.records(expect=3)
    running.collector.flush()
    assert sorted(joined(running.collector.log_dir)) == sorted(
        [
            ("thumbs", -1.0, "app", "teacher", True),
            ("rating", 5.0, "app", "teacher", True),
            ("correction", None, "app", "teacher", True),
        ]
    )  # the unknown id's flag is kept, without a pair to join


def test_only_trusted_callers_are_heard(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    run = RunningProxy(_settings(tmp_path, teacher, student, SHADOWTUTOR_FEEDBACK_KEY=KEY))
    try:
        event = {"request_id": "a" * 32, "kind": "thumbs", "value": "up"}
        url = f"{run.url}/v1/feedback"
        assert httpx.post(url, json=event).status_code == 401  # loopback is not enough now
        wrong = {"authorization": "Bearer nope"}
        assert httpx.post(url, json=event, headers=wrong).status_code == 401
        good = {"authorization": f"Bearer {KEY}"}
        assert httpx.post(url, json=event, headers=good).status_code == 202
        other = {"x-shadowtutor-feedback-key": KEY}
        assert httpx.post(url, json=event | {"value": "down"}, headers=other).status_code == 202
        stats = run.collector.stats()["feedback"]
        assert stats["untrusted"] == 2 and stats["accepted"] == 2
    finally:
        run.close()


def test_without_a_key_a_caller_off_loopback_is_refused(running: RunningProxy) -> None:
    from starlette.requests import Request

    from shadowtutor.collect import feedback_http

    def request(host: str) -> Request:
        return Request({"type": "http", "headers": [], "client": (host, 5000)})

    assert feedback_http.trusted(request("127.0.0.1"), "")
    assert feedback_http.trusted(request("::1"), "")
    assert not feedback_http.trusted(request("10.0.0.7"), "")
    assert not feedback_http.trusted(request("127.0.0.1"), KEY)  # a key set: the key decides


@pytest.mark.parametrize("served", ["teacher", "student"])
def test_an_app_on_the_wrapper_sends_feedback_on_what_it_got(
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
        list(stream)
        aclient = c.wrap(openai.AsyncOpenAI(base_url=teacher.openai_url, api_key="k"))

        async def one() -> object:
            return await aclient.chat.completions.create(model="gpt-4o-mini", messages=MSGS)

        adone = asyncio.run(one())
        assert c.feedback(done, "thumbs", "down", comment="wrong").status == "accepted"
        assert c.feedback(stream, "rating", 4).status == "accepted"
        assert c.feedback(shadowtutor.request_id(adone), "flag", "off topic").matched is True
        assert c.feedback(done, "thumbs", "down", comment="wrong").status == "duplicate"
        assert c.feedback(object(), "thumbs", "up").status == "malformed"  # no id to go by
        records(c, expect=3)
        stats = c.stats()["feedback"]
        assert (stats["accepted"], stats["duplicate"], stats["malformed"]) == (3, 1, 1)
        log_dir = c.log_dir
    rows = joined(log_dir)
    assert sorted((k, s) for k, _, _, s, _ in rows) == sorted(
        [("thumbs", served), ("rating", served), ("flag", served)]
    )


def test_a_regenerate_and_an_abandoned_conversation_are_recorded(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    env = {"SHADOWTUTOR_REGENERATE_WINDOW_S": "60", "SHADOWTUTOR_ABANDON_AFTER_S": "0.3"}
    with collector_for(tmp_path, student, env) as c:
        client = c.wrap(openai.OpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0))
        conv = {"conversation_id": "chat-1"}
        first = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, shadow=conv)
        again = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, shadow=conv)
        time.sleep(0.5)
        c.flush()
        stats = c.stats()["feedback"]
        assert stats["by_kind"] == {"regenerate": 1, "abandoned": 1}
        records(c, expect=2)
        log_dir = c.log_dir
    con = sql.connect(log_dir)
    read.create_views(con, log_dir)
    got = con.execute("SELECT request_id, kind, source FROM feedback ORDER BY kind DESC").fetchall()
    assert got == [
        (shadowtutor.request_id(first), "regenerate", "implicit"),
        (shadowtutor.request_id(again), "abandoned", "implicit"),
    ]


def test_feedback_import_keys_rows_by_id_or_by_conversation_and_time(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    from click.testing import CliRunner

    from shadowtutor.cli import main

    with collector_for(tmp_path, student) as c:
        client = c.wrap(openai.OpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0))
        conv = {"conversation_id": "ticket-9"}
        one = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, shadow=conv)
        records(c, expect=1)
        log_dir = c.log_dir
    rid = shadowtutor.request_id(one)
    [rec] = list(read.iter_records(log_dir))
    later = rec["ts"].replace("Z", "+00:00")
    table = tmp_path / "feedback.csv"
    table.write_text(
        "request_id,conversation_id,ts,kind,value,comment\n"
        f"{rid},,,thumbs,down,slow\n"
        f",ticket-9,{later},rating,2,\n"  # by conversation and time
        f",ticket-9,2020-01-01T00:00:00Z,rating,2,\n"  # before any answer: unresolved
        f"{rid},,,thumbs,down,slow\n"  # twice in the file
        f"{'e' * 32},,,flag,spam,\n"  # no such answer: kept, counted
        f"{rid},,,thumbs,sideways,\n"
    )
    env = {"SHADOWTUTOR_HOME": str(tmp_path / "home")}
    out = CliRunner().invoke(main, ["feedback", "import", str(table)], env=env)
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == (
        "6 rows: 3 imported (1 of them for an id with no pair in the log, kept), 1 duplicate, "
        "1 malformed, 1 unresolved, 0 not written"
    )
    assert "line 4: no answer of that conversation" in out.output
    assert "line 7: a thumbs 'value' is up or down" in out.output
    again = CliRunner().invoke(main, ["feedback", "import", str(table)], env=env)
    assert "0 imported" in again.output and "4 duplicate" in again.output  # nothing doubled
    stats = CliRunner().invoke(main, ["feedback", "stats"], env=env)
    assert stats.output.startswith("3 feedback events")
    assert "flag        import           1  (1 without a pair in the log)" in stats.output
    assert "rating      import           1  (0 without a pair in the log)" in stats.output

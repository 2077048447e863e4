"""Queued work survives a kill -9 and a stop past the flush timeout: the teacher's answers are
journaled when queued, the next start on the same log folder writes what was pending (the
student side says it was not asked), counts it, and never writes a record twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from shadowtutor.collect import journal
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.config import Settings
from shadowtutor.log import read, schema, write
from shadowtutor.testing.modelserver import ModelServer


@pytest.fixture
def teacher() -> Iterator[ModelServer]:
    with ModelServer(models=["gpt-4o-mini"]) as srv:
        yield srv


@pytest.fixture
def slow_student() -> Iterator[ModelServer]:
    with ModelServer(models=["llama3"], answer="ciao", delay=60.0) as srv:
        yield srv


def env_for(home: Path, student: ModelServer) -> dict[str, str]:
    return {
        "SHADOWTUTOR_HOME": str(home),
        "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
        "SHADOWTUTOR_STUDENT_TIMEOUT_S": "120",
        "SHADOWTUTOR_WORKERS": "2",
    }


CHILD = textwrap.dedent(
    """
    import os, signal, sys, time, openai
    from shadowtutor.collect.collector import ShadowCollector
    n, how = int(sys.argv[2]), sys.argv[3]
    c = ShadowCollector()
    client = c.wrap(openai.OpenAI(base_url=sys.argv[1], api_key="k", max_retries=0))
    for i in range(n):
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": f"q{i}"}])
    if how == "close":
        print(c.close(timeout=0.2), c.stats()["unfinished_at_exit"], flush=True)
        os._exit(0)  # the interpreter ends: the workers still waiting on the student die
    time.sleep(0.3)  # a few group commits
    print("queued", c.stats()["enqueued"], flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def run_child(home: Path, teacher: ModelServer, student: ModelServer, n: int, how: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTUTOR_")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, teacher.openai_url, str(n), how],
        env=env | env_for(home, student),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if how == "kill":
        assert done.returncode == -signal.SIGKILL, done.stderr
    return done.stdout


def log_records(home: Path) -> list[dict]:
    return list(read.iter_records(home / "logs"))


def test_kill_9_under_load_loses_nothing_and_doubles_nothing(
    home: Path, teacher: ModelServer, slow_student: ModelServer
) -> None:
    out = run_child(home, teacher, slow_student, 300, "kill")
    assert "queued 300" in out
    assert log_records(home) == []  # every job was still waiting for the student
    slow_student.delay = 0.0
    with ShadowCollector(Settings.load(env_for(home, slow_student))) as c:
        assert c.stats()["recovered"] == 300
    records = log_records(home)
    ids = Counter(r["id"] for r in records)
    assert len(ids) == 300 and max(ids.values()) == 1
    assert {r["student"]["error"] for r in records} == {journal.NOT_ASKED}
    assert sorted(r["teacher"]["response"] for r in records) == sorted(
        f"echo: q{i}" for i in range(300)
    )
    assert all(r["metadata"]["recovered_from_journal"] for r in records)
    assert all(schema.validate(r) for r in records)
    assert list((home / "logs" / "journal").glob("*.jsonl")) == []
    with ShadowCollector(Settings.load(env_for(home, slow_student))) as again:
        assert again.stats()["recovered"] == 0  # recovered once only


def test_a_stop_past_the_flush_timeout_is_counted_and_recovered(
    home: Path, teacher: ModelServer, slow_student: ModelServer
) -> None:
    out = run_child(home, teacher, slow_student, 20, "close")
    ok, unfinished = out.split()
    assert ok == "False" and int(unfinished) == 2  # two workers held a job each
    assert len(log_records(home)) == 18  # the queued ones were logged without the student
    slow_student.delay = 0.0
    with ShadowCollector(Settings.load(env_for(home, slow_student))) as c:
        assert c.stats()["recovered"] == 2
    ids = Counter(r["id"] for r in log_records(home))
    assert len(ids) == 20 and max(ids.values()) == 1


def test_recovery_skips_what_the_dead_writer_already_logged(home: Path) -> None:
    """The crash fell between a record's write and its done-mark in the journal."""
    log_dir = home / "logs"
    writer = write.LogWriter(log_dir)
    rec = schema.make_record(
        messages=[{"role": "user", "content": "hi"}], teacher={"model": "gpt-4o", "response": "hey"}
    )
    writer.append(rec)
    writer.close()
    folder = journal.journal_dir(log_dir)
    folder.mkdir(parents=True)
    entry = {"id": rec["id"], "ts": rec["ts"], "messages": rec["messages"], "teacher": {}}
    other = entry | {"id": "not-yet-logged"}
    lines = [json.dumps({"j": e}) for e in (entry, other)] + ['{"j": {"id": "torn']
    (folder / f"{writer.token}-00000.jsonl").write_text("\n".join(lines))
    settings = Settings.load({"SHADOWTUTOR_HOME": str(home)})
    with ShadowCollector(settings) as c:
        stats = c.stats()
    assert (stats["recovered"], stats["recovered_already_logged"]) == (1, 1)
    assert Counter(r["id"] for r in log_records(home)) == {rec["id"]: 1, "not-yet-logged": 1}


def test_a_live_writers_journal_is_left_alone(home: Path, teacher: ModelServer) -> None:
    with ModelServer(models=["llama3"], delay=30.0) as student:
        settings = Settings.load(env_for(home, student))
        first = ShadowCollector(settings)
        try:
            client = first.wrap(openai.OpenAI(base_url=teacher.openai_url, api_key="k"))
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}]
            )
            journal_files = []
            for _ in range(100):
                journal_files = list(journal.journal_dir(home / "logs").glob("*.jsonl"))
                if journal_files:
                    break
                time.sleep(0.02)
            assert journal_files
            with ShadowCollector(settings) as second:
                assert second.stats()["recovered"] == 0
        finally:
            first.close(timeout=0.1)

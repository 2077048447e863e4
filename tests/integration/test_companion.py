"""The collector's companion process (shadowtutor/collect/companion.py): the shadow work runs in a
child process; records, counters and metrics are the same as in-process; the child dies with
its parent; a crashed child hands its work back to in-process workers, nothing lost."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shadowtutor.collect import metrics
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.collect.job import Job
from shadowtutor.log import read
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import RunningProxy, collector_for, openai_client, records

COMPANION = {"SHADOWTUTOR_COMPANION": "1"}


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return False


def job(i: int) -> Job:
    return Job(
        messages=[{"role": "user", "content": f"question {i}"}],
        teacher={"model": "gpt-4o-mini", "response": f"answer {i}", "latency_ms": 50.0},
    )


def test_the_companion_writes_the_records_and_its_counters_reach_stats(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    c = collector_for(tmp_path, student, COMPANION)
    try:
        link = c.companion
        assert link is not None and link.pid != os.getpid()
        scrape = metrics.for_collector(c)  # before the calls: its histograms see them
        client = c.wrap(openai_client(teacher))
        for i in range(6):
            msgs = [{"role": "user", "content": f"q{i}"}]
            client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        recs = records(c, 6)
        assert sorted(r["teacher"]["response"] for r in recs) == [f"echo: q{i}" for i in range(6)]
        assert all(r["student"]["response"] and r["student"]["error"] is None for r in recs)
        assert all(r["similarity"]["score"] is not None for r in recs)
        # The records were written by the child: its writer's file, not this process's.
        assert link.token and all(link.token in str(p) for p in c.log_dir.rglob("*.jsonl")
                                  if "journal" not in p.parts)  # fmt: skip
        s = c.stats()
        assert (s["enqueued"], s["logged"], s["student_ok"], s["dropped"]) == (6, 6, 6, 0)
        assert s["companion"]["alive"] and s["companion"]["pid"] == link.pid
        assert s["companion_failures"] == 0
        # The metrics read the same counters, and the child's latencies feed the histograms.
        text = scrape.render().decode()
        assert "shadowtutor_records_logged_total 6.0" in text
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        counts = [
            s.value
            for s in fams["shadowtutor_student_latency_seconds"].samples
            if s.name.endswith("_count")
        ]
        assert counts == [6.0]
    finally:
        assert c.close()
    assert wait_gone(link.pid, 10), "the companion outlived close()"
    assert c.stats()["logged"] == 6  # the last report stays readable after close


def test_a_parent_killed_with_sigkill_leaves_no_companion_and_loses_nothing(
    tmp_path: Path, student: ModelServer
) -> None:
    from tests.conftest import ROOT

    student.delay = 0.05  # the child still has work when its parent dies
    log_dir = tmp_path / "killed-logs"
    script = f"""
import os, signal, sys
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.collect.job import Job
from shadowtutor.config import Settings
s = Settings.load({{"SHADOWTUTOR_STUDENT_BASE_URL": "{student.url}",
                    "SHADOWTUTOR_HOME": "{tmp_path / "home"}"}})
c = ShadowCollector(s, log_dir="{log_dir}", companion=True)
for i in range(20):
    c.submit(Job(messages=[{{"role": "user", "content": f"q{{i}}"}}],
                 teacher={{"model": "gpt-4o-mini", "response": f"a{{i}}"}}))
print(c.companion.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no flush, no close, no atexit
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -9, proc.stderr
    child = int(proc.stdout.split()[0])
    assert wait_gone(child, 30), "the companion was left running after its parent died"
    recs = list(read.iter_records(log_dir))
    assert sorted(r["teacher"]["response"] for r in recs) == sorted(f"a{i}" for i in range(20))
    assert all(r["student"]["error"] is None for r in recs)  # the child finished the work


def test_a_crashed_companion_hands_its_work_back_counted_nothing_lost_nothing_twice(
    tmp_path: Path, student: ModelServer
) -> None:
    student.delay = 0.2  # jobs wait in the child: journaled there, not logged yet
    c = collector_for(tmp_path, student, COMPANION | {"SHADOWTUTOR_STUDENT_TIMEOUT_S": "5"})
    try:
        link = c.companion
        assert link is not None
        jobs = [job(i) for i in range(10)]
        for j in jobs[:6]:
            assert c.submit(j)
        time.sleep(0.5)  # some answered and logged by the child, the rest journaled
        link.kill()
        assert wait_gone(link.pid, 10)
        for j in jobs[6:]:
            assert c.submit(j)  # after the crash: in this process
        assert c.flush(30)
        recs = list(read.iter_records(c.log_dir))
        ids = [r["id"] for r in recs]
        assert sorted(ids) == sorted(j.id for j in jobs)  # every job once
        assert sorted(r["teacher"]["response"] for r in recs) == sorted(
            f"answer {i}" for i in range(10)
        )
        s = c.stats()
        assert s["companion_failures"] == 1 and not s["companion"]["alive"]
        assert "companion" in s["last_error"] and "runs in this process" in s["last_error"]
        assert s["logged"] == 10 and s["enqueued"] == 10
    finally:
        c.close()


def test_a_companion_that_cannot_start_leaves_the_work_here_counted(
    tmp_path: Path, student: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    c = collector_for(tmp_path, student, COMPANION)
    monkeypatch.undo()
    try:
        assert c.companion is None
        s = c.stats()
        assert s["companion_failures"] == 1 and "companion did not start" in s["last_error"]
        assert c.submit(job(1))
        assert c.flush(10)
        assert c.stats()["logged"] == 1 and c.stats()["student_ok"] == 1
    finally:
        c.close()


def test_an_injected_student_keeps_the_work_in_process_and_says_why(
    tmp_path: Path, student: ModelServer
) -> None:
    from shadowtutor.backends import student_backend

    base = collector_for(tmp_path, student)
    backend = student_backend(base.settings)
    base.close()
    with ShadowCollector(base.settings, student=backend, companion=True) as c:
        assert c.companion is None and "companion not used" in (c.last_error or "")


def test_the_proxy_with_a_companion_forwards_and_logs(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    c = collector_for(tmp_path, student, COMPANION)
    settings = dataclasses.replace(c.settings, teacher_base_url=teacher.openai_url)
    running = RunningProxy(settings, c)
    try:
        client = running.client()
        for i in range(3):
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"p{i}"}]
            )
            assert reply.choices[0].message.content == f"echo: p{i}"
        with client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "s"}], stream=True
        ) as stream:
            assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
        recs = records(c, 4)
        assert len(recs) == 4
        # the companion reports its counts about once a second: on a loaded host the report
        # that says 4 can come seconds after the records are on disk
        deadline = time.monotonic() + 30
        while True:
            health = httpx.get(f"{running.url}/healthz").json()["collector"]
            if health["logged"] == 4 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert health["logged"] == 4 and health["companion"]["alive"]
    finally:
        running.close()  # the proxy's shutdown closes the collector and its companion
    assert wait_gone(c.companion.pid, 10)


def test_an_unshadowed_stream_passes_through_as_it_comes(
    tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    """Forwarding only (sample 0%): the first event reaches the app while the teacher is still
    sending (it used to be read whole first, so the time to first token was the whole answer)."""
    teacher.chunk_delay = 0.3  # 6 words: the whole stream takes ~1.8 s
    c = collector_for(tmp_path, student, {"SHADOWTUTOR_SAMPLE_PERCENT": "0"})
    settings = dataclasses.replace(c.settings, teacher_base_url=teacher.openai_url)
    running = RunningProxy(settings, c)
    try:
        start = time.monotonic()
        with running.client().chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "uno due tre quattro cinque"}],
            stream=True,
        ) as stream:
            first = None
            parts = []
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    first = first or time.monotonic() - start
                    parts.append(chunk.choices[0].delta.content)
            total = time.monotonic() - start
        assert "".join(parts) == "echo: uno due tre quattro cinque"
        assert first is not None and first < total / 2, (first, total)
        assert c.stats()["not_sampled"] == 1
    finally:
        running.close()

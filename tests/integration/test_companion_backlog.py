"""Issue 27 item 1: a kill -9 of `shadowtutor proxy` (companion on) while the companion has
fallen behind lost the answers still in the parent's backlog (not yet written to the pipe),
silently. Now each backlog frame is on disk (the spill file) before the hand-off returns; the
child processes what its dead parent never wrote to the pipe, and when both are gone the next
start logs it, each answer once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from shadowtutor.log import read
from shadowtutor.testing.faults import wait_until_up
from shadowtutor.testing.modelserver import ModelServer
from tests.integration.test_companion import wait_gone
from tests.support.browser import free_port

N = 60
PAD = "x" * 40_000  # ~80 KB a frame (the question and its echo): a dozen fill the 1 MiB pipe


@pytest.fixture
def servers() -> Iterator[tuple[ModelServer, ModelServer]]:
    with (
        ModelServer(models=["gpt-4o-mini"]) as teacher,
        ModelServer(models=["llama3"], answer="ciao", delay=60.0) as student,
    ):
        yield teacher, student


def start_proxy(home: Path, teacher: ModelServer, student: ModelServer) -> tuple[Any, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTUTOR_")}
    env |= {
        "SHADOWTUTOR_HOME": str(home),
        "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
        "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
        "SHADOWTUTOR_STUDENT_TIMEOUT_S": "2",
        "SHADOWTUTOR_BREAKER_FAILURES": "1000",
        "SHADOWTUTOR_WORKERS": "1",
        "SHADOWTUTOR_QUEUE_SIZE": "200",
        "SHADOWTUTOR_COMPANION": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "shadowtutor.cli", "proxy", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(proc, f"{url}/healthz", what="the proxy", timeout_s=60)
    return proc, url


def logged(home: Path) -> Counter[str]:
    """How often each question (its number) is in the log."""
    out: Counter[str] = Counter()
    for rec in read.iter_records(home / "logs"):
        out[str(rec["messages"][-1]["content"]).split(" ", 1)[0]] += 1
    return out


def test_a_kill_9_with_a_backlog_loses_no_answered_request(
    home: Path, servers: tuple[ModelServer, ModelServer]
) -> None:
    teacher, student = servers
    proc, url = start_proxy(home, teacher, student)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        answered = []
        for i in range(N):
            out = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i} {PAD}"}]
            )
            assert out.choices[0].message.content.startswith(f"echo: q{i} ")
            answered.append(f"q{i}")
        deadline = time.monotonic() + 30  # every hand-off made (each after its answer)
        while time.monotonic() < deadline:
            companion = httpx.get(f"{url}/healthz").json()["collector"]["companion"]
            if companion["backlog"] and companion["in_flight"] >= N - 2:
                break
            time.sleep(0.05)
        assert companion["backlog"] > 0, companion  # the case of the issue: a backlog in memory
        child = companion["pid"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    student.down()  # the orphaned child drains fast now (refused at once), as a dead GPU would
    assert wait_gone(child, 60), "the companion did not finish its dead parent's work"
    counts = logged(home)
    assert sorted(counts) == sorted(answered) and max(counts.values()) == 1
    assert list((home / "logs" / "journal").glob("*.spill")) == []
    # The next start has nothing left to recover, and doubles nothing.
    student.up()
    proc, url = start_proxy(home, teacher, student)
    try:
        stats = httpx.get(f"{url}/healthz").json()["collector"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert stats["recovered"] == 0
    assert max(logged(home).values()) == 1


def test_when_parent_and_child_both_die_the_next_start_logs_each_answer_once(
    home: Path, servers: tuple[ModelServer, ModelServer]
) -> None:
    teacher, student = servers
    proc, url = start_proxy(home, teacher, student)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        for i in range(N):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i} {PAD}"}]
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            companion = httpx.get(f"{url}/healthz").json()["collector"]["companion"]
            if companion["backlog"] and companion["in_flight"] >= N - 2:
                break
            time.sleep(0.05)
        assert companion["backlog"] > 0, companion
        os.kill(companion["pid"], signal.SIGKILL)  # the whole group at once: no drain
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_gone(companion["pid"], 10)
    spilled = list((home / "logs" / "journal").glob("*.spill"))
    assert len(spilled) == 1 and spilled[0].stat().st_size > 0
    student.down()
    proc, url = start_proxy(home, teacher, student)
    try:
        deadline = time.monotonic() + 60  # the child starts (slow on a busy host), then reports
        while time.monotonic() < deadline:
            stats = httpx.get(f"{url}/healthz").json()["collector"]
            if stats["recovered"]:
                break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    counts = logged(home)
    # What the child journaled and what the parent spilled are logged, once; what the pipe
    # held when both died (at most its 1 MiB: ~13 of these frames) was never on disk.
    assert max(counts.values()) == 1 and len(counts) >= N - 14
    assert stats["recovered"] > 0
    assert list((home / "logs" / "journal").glob("*.spill")) == []

"""Feedback survives what chat records survive (issue 30): a ``kill -9`` of the proxy while
apps post feedback loses no acknowledged event and doubles none; a full disk answers "not
stored" (503) for what it could not write, and the same events sent again once there is room
are taken once, with no broken or doubled line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shadowtutor.collect.feedback import FeedbackDesk
from shadowtutor.log import feedback
from shadowtutor.testing.faults import wait_until_up
from shadowtutor.testing.listeners import free_port
from shadowtutor.testing.modelserver import ModelServer


@pytest.fixture
def teacher() -> Iterator[ModelServer]:
    with ModelServer(models=["gpt-4o-mini"]) as srv:
        yield srv


def _proxy(home: Path, teacher: ModelServer, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTUTOR_")}
    env |= {
        "SHADOWTUTOR_HOME": str(home),
        "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
        "SHADOWTUTOR_COMPANION": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "shadowtutor.cli", "proxy", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return wait_until_up(proc, f"http://127.0.0.1:{port}/healthz", what="proxy", timeout_s=60)


def test_kill_9_under_feedback_load_loses_no_acknowledged_event(
    tmp_path: Path, teacher: ModelServer
) -> None:
    home = tmp_path / "home"
    port = free_port()
    proc = _proxy(home, teacher, port)
    acknowledged: list[str] = []
    stop = threading.Event()

    def post(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            i = 0
            while not stop.is_set():
                event = {"request_id": f"w{worker}-{i}", "kind": "rating", "value": i % 6}
                try:
                    resp = http.post("/v1/feedback", json=event)
                except httpx.HTTPError:
                    return  # the proxy is gone: this one was never acknowledged
                if resp.status_code == 202:
                    acknowledged.append(resp.json()["id"])
                i += 1

    threads = [threading.Thread(target=post, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 1500 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acknowledged) >= 1500
    found = feedback.scan(home / "logs")
    assert set(acknowledged) <= found.ids  # every acknowledged event is in the log
    assert found.repeated == 0  # none twice
    assert len(found.bad) <= 1  # at most a torn last line, of an event never acknowledged


def test_a_full_disk_answers_not_stored_and_the_resent_events_are_taken_once(
    tiny_tmpfs: Path,
) -> None:
    desk = FeedbackDesk(tiny_tmpfs / "logs")
    pad = "y" * 3500
    events = [
        {"request_id": f"r{i}", "kind": "flag", "value": "spam", "comment": pad[: 3000 + i % 7]}
        for i in range(600)
    ]  # ~2 MB: twice the disk
    outcomes = desk.take(events[:300]) + [desk.take([e])[0] for e in events[300:]]
    taken = [e for e, o in zip(events, outcomes, strict=True) if o.status == "accepted"]
    failed = [e for e, o in zip(events, outcomes, strict=True) if o.status == "write_failed"]
    assert taken and failed and len(taken) + len(failed) == 600
    assert desk.stats()["write_failed"] == len(failed)
    assert "No space left" in desk.stats()["last_write_error"]
    subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_tmpfs)], check=True)
    again = desk.take(failed + taken[:5])  # the app sends them again (and a few twice)
    assert [o.status for o in again] == ["accepted"] * len(failed) + ["duplicate"] * 5
    desk.close()
    found = feedback.scan(tiny_tmpfs / "logs")
    assert found.events == 600 and found.repeated == 0 and found.bad == []


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB tmpfs (needs root; skipped elsewhere), grown by ``remount`` in the test."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)

"""The journal's files: rotated, removed once every job in them is logged, kept otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowtutor.collect import journal
from shadowtutor.collect.job import Job


def job(i: int) -> Job:
    return Job(
        messages=[{"role": "user", "content": f"q{i}"}], id=f"id-{i}", teacher={"response": "a"}
    )


def test_rotated_files_go_once_done_and_a_clean_close_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "ROTATE_S", 0.0)  # every commit opens a new file
    j = journal.Journal(tmp_path, "w1", interval_s=3600)  # commits only when asked
    j.add(job(1))
    j._commit()
    j.add(job(2))
    j._commit()
    assert len(list(tmp_path.glob("*.jsonl"))) == 2
    j.done(["id-1"])
    j.add(job(3))
    j._commit()  # the first file's only job is logged: it goes
    names = sorted(p.name for p in tmp_path.glob("*.jsonl"))
    assert names == ["w1-00001.jsonl", "w1-00002.jsonl"]
    assert journal.orphaned(tmp_path) == []  # locked by the live writer
    j.done(["id-2", "id-3"])
    assert j.close() == 0
    assert list(tmp_path.glob("*.jsonl")) == []


def test_a_close_with_pending_jobs_keeps_them_for_the_next_start(tmp_path: Path) -> None:
    j = journal.Journal(tmp_path, "w2", interval_s=3600)
    for i in range(3):
        j.add(job(i))
    j.done(["id-0"])
    assert j.close() == 2
    [path] = journal.orphaned(tmp_path)
    entries, torn = journal.pending_entries(path)
    assert sorted(e["id"] for e in entries) == ["id-1", "id-2"] and torn == 0
    assert journal.decode(entries[0]).student_error == journal.NOT_ASKED


def test_an_inline_journal_writes_each_job_and_each_done_before_returning(
    tmp_path: Path,
) -> None:
    """The companion's journal: no thread, the caller's add() is on the page cache at once."""
    acked: list[str] = []
    j = journal.Journal(tmp_path, "w3", inline=True)
    j.on_commit = lambda jobs: acked.extend(x.id or "" for x in jobs)
    assert not j._thread.is_alive()
    j.add(job(1))
    [path] = tmp_path.glob("*.jsonl")
    assert acked == ["id-1"]  # acknowledged only once written
    assert '"id":"id-1"' in path.read_text()
    j.done(["id-1"])
    assert path.read_text().splitlines()[-1] == '{"d":["id-1"]}'
    assert j.close() == 0 and list(tmp_path.glob("*.jsonl")) == []


def test_a_threaded_journal_sleeps_when_idle_and_writes_a_job_within_its_interval(
    tmp_path: Path,
) -> None:
    """No timer while nothing arrives (the 20 ms poll burned an idle proxy's CPU); a job
    arriving wakes it and is written one interval later, and logged ids ride along."""
    import time

    j = journal.Journal(tmp_path, "w4", interval_s=0.02)
    time.sleep(0.1)
    assert not j._wake.is_set() and list(tmp_path.glob("*.jsonl")) == []
    j.add(job(1))
    deadline = time.monotonic() + 5
    while not list(tmp_path.glob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.005)
    [path] = tmp_path.glob("*.jsonl")
    while '"id":"id-1"' not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert '"id":"id-1"' in path.read_text()
    j.done(["id-1"])
    while '{"d":["id-1"]}' not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)  # within DONE_LAG_S without another job
    assert '{"d":["id-1"]}' in path.read_text()
    assert j.close() == 0

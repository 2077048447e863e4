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

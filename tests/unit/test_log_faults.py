"""The shadow log under faults (issue 12): compaction during writes, a full disk, bad lines.

Each test is the issue's reproduction, small: lines written to a day after its compaction,
a write that fails part way with ENOSPC and is retried, import of lines that used to stop it,
schema-invalid lines at compaction and in the dashboards' views, a truncated Parquet part.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from shadowtutor.log import compaction, ingest, read, schema, write
from shadowtutor.log.errors import LogReadError, LogWriteError, RecordError
from shadowtutor.testing.faults import FullDisk
from tests.support.killed_compaction import killed_compaction

YESTERDAY = datetime(2026, 5, 9, 23, 59, 59, tzinfo=UTC)
TODAY = date(2026, 5, 10)


def rec(i: int, ts: datetime = YESTERDAY, **over: object) -> dict:
    r = schema.make_record(
        id=f"pair-{i}",
        ts=ts,
        messages=[{"role": "user", "content": f"question {i}"}],
        teacher={"model": "gpt-4o", "response": f"answer {i} " + "x" * (i % 7)},
    )
    r.update(over)
    return r


def count(log_dir: Path) -> tuple[int, int]:
    con = duckdb.connect()
    read.create_views(con, log_dir)
    return con.execute("SELECT count(*), count(DISTINCT id) FROM pairs").fetchone()


# --- 1: lines written to a closed day after its compaction ---------------------------------


def test_lines_written_to_a_day_after_its_compaction_are_kept(tmp_path: Path) -> None:
    with write.LogWriter(tmp_path) as w:  # one writer for its lifetime, like a collector
        w.append_many(rec(i) for i in range(100))
        first = compaction.compact(tmp_path, today=TODAY)
        assert first.rows_written == 100 and first.problems == []
        w.append_many(rec(i) for i in range(100, 200))  # yesterday's queue, finished late
    report = read.validate_log(tmp_path)
    assert report.records == 200 and report.bad == []
    assert count(tmp_path) == (200, 200)
    second = compaction.compact(tmp_path, today=TODAY)  # the new file has the old file's name
    assert second.problems == [] and second.rows_written == 100
    assert read.jsonl_files(tmp_path) == [] and count(tmp_path) == (200, 200)
    assert compaction.compact(tmp_path, today=TODAY).rows_written == 0
    assert count(tmp_path) == (200, 200)


def test_a_day_quarantined_twice_keeps_both_files(tmp_path: Path) -> None:
    with write.LogWriter(tmp_path) as w:
        for round_ in range(2):
            w.append_many(rec(round_ * 10 + i) for i in range(10))
            path = read.jsonl_files(tmp_path)[0]
            with open(path, "a") as fh:  # a torn line, then the writer goes on
                fh.write('{"id": "half\n')
            assert compaction.compact(tmp_path, today=TODAY).problems == []
    kept = sorted((tmp_path / "quarantine").rglob("*.jsonl"))
    assert len(kept) == 2 and count(tmp_path) == (20, 20)


# --- 2: a write that fails part way (disk full) is resumed, never repeated ----------------


def full_disk(monkeypatch: pytest.MonkeyPatch, folder: Path, room: int) -> FullDisk:
    """``os.write`` for the log folder's files takes ``room`` more bytes, then fails with
    ENOSPC until ``grow()``."""
    disk = FullDisk(folder, room)
    monkeypatch.setattr(os, "write", disk)
    return disk


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc (Linux)")
def test_a_write_failing_part_way_is_resumed_not_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [rec(i) for i in range(200)]
    sizes = [len(schema.dumps(r)) + 1 for r in records]
    disk = full_disk(monkeypatch, tmp_path, room=sum(sizes[:70]) + sizes[70] // 2)  # line 71
    w = write.LogWriter(tmp_path)
    with pytest.raises(LogWriteError) as err:
        w.append_many(records)
    assert err.value.written == 71 and err.value.errno == errno.ENOSPC and w.held == 1
    with pytest.raises(LogWriteError) as again:  # still full: nothing more taken
        w.append_many(records[71:])
    assert again.value.written == 0 and w.held == 1
    disk.grow()
    assert w.append_many(records[71:]) == 129 and w.held == 0
    w.close()
    report = read.validate_log(tmp_path)
    assert report.bad == [] and report.records == 200
    assert [r["id"] for r in read.iter_records(tmp_path)] == [r["id"] for r in records]


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc (Linux)")
def test_the_collector_retries_a_full_disk_without_doubling_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shadowtutor.collect.collector import ShadowCollector
    from shadowtutor.config import Settings

    log_dir = tmp_path / "logs"
    settings = Settings.load(
        {"SHADOWTUTOR_HOME": str(tmp_path / "home"), "SHADOWTUTOR_LOG_DIR": str(log_dir)}
    )
    c = ShadowCollector(settings, workers=1)
    try:
        c.executor.flush_interval_s = 3600.0  # the test drives the writes
        batch = [rec(i, ts=datetime(2026, 5, 10, 12, tzinfo=UTC)) for i in range(3000)]
        line = len(schema.dumps(batch[0])) + 1
        disk = full_disk(monkeypatch, log_dir, room=line * 1000 + 17)
        with c.executor._cond:
            c.executor._pending.extend(batch)
        assert c.executor._write_pending() is False
        assert c.stats()["last_error"].startswith("log write to")
        assert c.executor._write_pending() is False  # a retry while the disk is still full
        disk.grow()
        assert c.flush(5) is True
        stats = c.stats()
        assert stats["logged"] == 3000 and stats["unwritten"] == 0 and stats["lost"] == 0
        assert stats["last_error"] is None  # recovered
    finally:
        c.close(5)
    report = read.validate_log(log_dir)
    assert report.bad == [] and report.records == 3000
    assert count(log_dir) == (3000, 3000)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc (Linux)")
def test_records_written_before_a_full_disk_are_marked_done_in_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by bench/faults.py: the records of a slice that reached the disk before ENOSPC
    were counted as logged but stayed pending in the journal, so the stop reported them as
    `unfinished_at_exit` ("still with the student") and kept a journal for the next start."""
    import time

    from shadowtutor.collect.collector import ShadowCollector
    from shadowtutor.collect.job import Job
    from shadowtutor.config import Settings

    log_dir = tmp_path / "logs"
    settings = Settings.load(
        {"SHADOWTUTOR_HOME": str(tmp_path / "home"), "SHADOWTUTOR_LOG_DIR": str(log_dir)}
    )
    c = ShadowCollector(settings, workers=1, batch_size=10**6, flush_interval_s=3600)
    try:
        for i in range(300):
            job = Job(
                messages=[{"role": "user", "content": f"question {i}"}],
                teacher={"model": "gpt-4o-mini", "response": f"answer {i}"},
                student_error="unavailable: test",
            )
            assert c.submit(job, block=True)
        deadline = time.monotonic() + 10
        while c.executor._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        assert c.executor._queue.unfinished_tasks == 0
        with c.executor._cond:
            line = len(schema.dumps(c.executor._pending[0])) + 1
        # the records' folder only: the journal beside it keeps working
        disk = full_disk(monkeypatch, read.jsonl_root(log_dir), room=line * 100 + 17)
        assert c.executor._write_pending() is False
        assert 0 < c.stats()["logged"] < 300
        disk.grow()
        assert c.flush(5) is True
        assert c.stats()["logged"] == 300
        assert c.executor._journal.pending() == 0
    finally:
        closed = c.close(5)
    assert closed and c.stats()["unfinished_at_exit"] == 0
    assert count(log_dir) == (300, 300)


# --- 3 and 7: import never stops at a line, never writes non-standard JSON -----------------


def test_import_goes_past_undecodable_and_out_of_range_lines(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    late = {**rec(2), "ts": "9999-12-31T23:59:59-05:00"}
    lines = [
        schema.dumps(rec(1)).encode(),
        b'{"id": "bad-utf8", "note": "\xff\xfe"}',
        json.dumps(late).encode(),
        b'{"id": "nan", "ts": "2026-05-09T10:00:00Z", "messages": [{"role": "user", '
        b'"content": "q"}], "teacher": {"model": "m", "response": "a", "latency_ms": NaN}}',
        b'{"id": "inf", "ts": "2026-05-09T10:00:00Z", "messages": [{"role": "user", '
        b'"content": "q"}], "teacher": {"model": "m", "response": "a", "cost_usd": 1e999}}',
        b"[" * 100_000,
        json.dumps({**rec(3), "id": "x" * 65}).encode(),
        schema.dumps(rec(4)).encode(),
    ]
    src.write_bytes(b"\n".join(lines) + b"\n")
    log_dir = tmp_path / "logs"
    report = ingest.import_file(src, log_dir)
    assert report.imported == 2
    reasons = {b.line_no: b.reason for b in report.bad}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7]
    assert reasons[2].startswith("not valid UTF-8")
    assert reasons[3].startswith("'ts' is out of range")
    assert "NaN" in reasons[4] and "1e999" in reasons[5]
    assert "nested too deeply" in reasons[6]
    assert "65 characters" in reasons[7]
    written = b"".join(p.read_bytes() for p in read.jsonl_files(log_dir))
    assert b"NaN" not in written and b"Infinity" not in written
    assert {r["id"] for r in read.iter_records(log_dir)} == {"pair-1", "pair-4"}


def test_the_log_never_writes_non_standard_json(tmp_path: Path) -> None:
    with write.LogWriter(tmp_path) as w, pytest.raises(ValueError):
        w.append(rec(1, similarity={"method": "x", "score": float("nan")}))
    with pytest.raises(RecordError):
        schema.check_for_log(rec(2, metadata={"v": float("inf")}))
    with pytest.raises(RecordError, match="messages"):
        schema.check_for_log(rec(3, messages=[]))


def test_cli_import_names_each_bad_line_without_a_traceback(home: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from shadowtutor.cli import main

    src = tmp_path / "in.jsonl"
    good = [schema.dumps(rec(i)).encode() for i in (1, 2)]
    src.write_bytes(good[0] + b"\n\xff\n" + good[1])
    result = CliRunner().invoke(main, ["logs", "import", str(src)], catch_exceptions=False)
    assert result.exit_code == 1
    assert f"{src}:2: not valid UTF-8" in result.output
    assert "imported 2, already present 0, bad lines 1" in result.output


# --- 5: schema-invalid lines: quarantined, named; the day compacts; views skip them --------


def invalid_lines() -> list[str]:
    good = rec(0)
    return [
        schema.dumps({**good, "id": "v2", "schema_version": 4}),
        schema.dumps({**good, "id": "empty", "messages": []}),
        schema.dumps({**good, "id": "noteacher", "teacher": {"model": "m"}}),
        schema.dumps({**good, "id": "src", "source": "twitter"}),
        schema.dumps({**good, "id": "y" * 65}),
    ]


def test_schema_invalid_lines_are_quarantined_and_their_day_compacts(tmp_path: Path) -> None:
    with write.LogWriter(tmp_path) as w:
        w.append_many(rec(i) for i in range(10))
    path = read.jsonl_files(tmp_path)[0]
    with open(path, "a") as fh:
        fh.write("\n".join(invalid_lines()) + "\n")
    assert count(tmp_path) == (10, 10)  # the dashboards' views read only valid records
    report = compaction.compact(tmp_path, today=TODAY)
    assert report.problems == [] and report.rows_written == 10 and report.days == ["2026-05-09"]
    assert [b.line_no for b in report.bad] == [11, 12, 13, 14, 15]
    assert report.bad[0].reason.startswith("schema_version 4 is not supported")
    assert all(b.path == str(path) for b in report.bad)
    assert len(report.quarantined) == 1 and read.jsonl_files(tmp_path) == []
    assert count(tmp_path) == (10, 10)
    assert compaction.compact(tmp_path, today=TODAY).problems == []


def test_cli_compact_names_the_quarantined_lines(home: Path) -> None:
    from click.testing import CliRunner

    from shadowtutor.cli import main
    from shadowtutor.config import Settings

    log_dir = Settings.load().log_path
    with write.LogWriter(log_dir) as w:
        w.append_many(rec(i, ts=YESTERDAY - timedelta(days=400)) for i in range(3))
    path = read.jsonl_files(log_dir)[0]
    with open(path, "a") as fh:
        fh.write(invalid_lines()[0] + "\n")
    result = CliRunner().invoke(main, ["logs", "compact"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{path}:4: schema_version 4 is not supported" in result.output
    assert "3 rows written" in result.output and "1 with bad lines kept in quarantine" in (
        result.output
    )


# --- 19: a truncated Parquet part -------------------------------------------------------


def test_validate_names_a_truncated_parquet_part(home: Path) -> None:
    from click.testing import CliRunner

    from shadowtutor.cli import main
    from shadowtutor.config import Settings

    log_dir = Settings.load().log_path
    with write.LogWriter(log_dir) as w:
        w.append_many(rec(i, ts=YESTERDAY - timedelta(days=400)) for i in range(50))
    assert compaction.compact(log_dir).problems == []
    part = read.parquet_files(log_dir)[0]
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    report = read.validate_log(log_dir)
    assert len(report.bad) == 1 and report.bad[0].path == str(part)
    assert "truncated or corrupt" in report.bad[0].reason
    with pytest.raises(LogReadError, match="truncated or corrupt"):
        list(read.iter_records(log_dir))
    result = CliRunner().invoke(main, ["logs", "validate"], catch_exceptions=False)
    assert result.exit_code == 1
    assert f"{part}:0: Parquet part cannot be read" in result.output
    assert "0 valid records, 1 bad lines" in result.output


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB tmpfs (needs root; skipped elsewhere), grown by ``remount`` in the test."""
    import subprocess

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


def test_a_full_tmpfs_then_grown_neither_doubles_nor_breaks_a_line(tiny_tmpfs: Path) -> None:
    """The issue's reproduction: 1 MB tmpfs, 3,000 records, grow the disk, flush."""
    import subprocess

    from shadowtutor.collect.collector import ShadowCollector
    from shadowtutor.config import Settings

    log_dir = tiny_tmpfs / "logs"
    settings = Settings.load(
        {"SHADOWTUTOR_HOME": str(tiny_tmpfs.parent / "home"), "SHADOWTUTOR_LOG_DIR": str(log_dir)}
    )
    c = ShadowCollector(settings, workers=1)
    try:
        c.executor.flush_interval_s = 3600.0
        big = "y" * 400  # ~3,000 records of ~600 bytes: more than 1 MB
        batch = [
            rec(i, ts=datetime(2026, 5, 10, 12, tzinfo=UTC), metadata={"pad": big})
            for i in range(3000)
        ]
        with c.executor._cond:
            c.executor._pending.extend(batch)
        assert c.executor._write_pending() is False  # ENOSPC part way
        assert 0 < c.stats()["logged"] < 3000
        subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_tmpfs)], check=True)
        assert c.flush(5) is True
        assert c.stats()["logged"] == 3000 and c.stats()["last_error"] is None
    finally:
        c.close(5)
    report = read.validate_log(log_dir)
    assert report.bad == [] and report.records == 3000
    assert count(log_dir) == (3000, 3000)


def test_the_dashboards_count_only_valid_records(tmp_path: Path) -> None:
    from shadowtutor.log import analytics

    with write.LogWriter(tmp_path) as w:
        w.append_many(rec(i) for i in range(10))
    with open(read.jsonl_files(tmp_path)[0], "a") as fh:
        fh.write("\n".join(invalid_lines()) + "\n")
    con = analytics.connect(tmp_path, "UTC")
    assert con.execute("SELECT count(*) FROM facts").fetchone() == (10,)
    assert con.execute("SELECT count(*) FROM pairs").fetchone() == (10,)


def test_a_compaction_killed_with_sigkill_leaves_tmp_files_the_next_run_removes(
    tmp_path: Path,
) -> None:
    """Issue 27 item 5: kill -9 of `logs compact` left `.tmp` files no later run removed."""
    with write.LogWriter(tmp_path) as w:
        w.append_many([rec(i) for i in range(10)])
    killed_compaction(str(tmp_path))
    left = sorted((tmp_path / "parquet").glob("date=*/*.tmp"))
    assert len(left) == 2  # the staged part and the validated lines
    report = compaction.compact(tmp_path)
    assert sorted(report.swept) == [str(p) for p in left]
    assert list((tmp_path / "parquet").glob("date=*/*.tmp")) == []
    assert report.rows_written == 10 and count(tmp_path) == (10, 10)

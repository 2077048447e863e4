from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from shadowtutor.log import compaction, ingest, read, schema, write

DAY = datetime(2026, 5, 10, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def rec(i: int, ts: datetime = DAY, **over: object) -> dict:
    r = schema.make_record(
        id=f"pair-{i}",
        ts=ts,
        messages=[{"role": "user", "content": f"question {i}"}],
        teacher={"model": "gpt-4o", "response": f"answer {i}", "cost_usd": 0.01},
        student={"model": "llama3", "response": f"reply {i}", "latency_ms": 100.0 + i},
        similarity={"method": "lexical", "score": 0.5},
        category="greeting",
        language="en",
    )
    r.update(over)
    return r


def count(log_dir: Path) -> tuple[int, int]:
    con = duckdb.connect()
    read.create_views(con, log_dir)
    return con.execute("SELECT count(*), count(DISTINCT id) FROM pairs").fetchone()


WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from shadowtutor.log import schema, write
log_dir, worker = Path(sys.argv[1]), int(sys.argv[2])
with write.LogWriter(log_dir) as w:
    for j in range(0, 2000, 50):
        w.append_many(
            schema.make_record(
                id=f"pair-{worker}-{j + k}",
                ts=datetime(2026, 5, 10, 12, tzinfo=UTC),
                messages=[{"role": "user", "content": "q"}],
                teacher={"model": "gpt-4o", "response": "a" * (j % 500)},
            )
            for k in range(50)
        )
"""


def test_many_processes_write_at_once_without_losing_a_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(w)], env=env)
        for w in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert len(read.jsonl_files(tmp_path)) == 4  # one file per writer process and day
    report = read.validate_log(tmp_path)
    assert report.records == 8000 and report.bad == []
    assert count(tmp_path) == (8000, 8000)


def test_records_land_in_their_own_days_partition(tmp_path: Path) -> None:
    with write.LogWriter(tmp_path) as w:
        w.append_many([rec(1), rec(2, DAY - timedelta(days=3))])
    days = sorted(p.parent.name for p in read.jsonl_files(tmp_path))
    assert days == ["date=2026-05-07", "date=2026-05-10"]


def test_a_torn_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    with write.LogWriter(tmp_path) as w:
        w.append_many(rec(i) for i in range(3))
    path = read.jsonl_files(tmp_path)[0]
    with open(path, "a") as fh:
        fh.write(schema.dumps(rec(99))[:40])  # the process died mid-write
    report = read.validate_log(tmp_path)
    assert report.records == 3 and len(report.bad) == 1 and report.torn_tail == 1
    assert report.bad[0].line_no == 4
    assert count(tmp_path) == (3, 3)  # DuckDB reads past it too


def test_views_read_jsonl_and_parquet_together(tmp_path: Path) -> None:
    with write.LogWriter(tmp_path) as w:
        w.append_many([rec(1, DAY - timedelta(days=2)), rec(2)])
    compaction.compact(tmp_path, today=date(2026, 5, 10))
    assert len(read.parquet_files(tmp_path)) == 1 and len(read.jsonl_files(tmp_path)) == 1
    con = duckdb.connect()
    read.create_views(con, tmp_path)
    rows = con.execute(
        "SELECT id, ts, teacher_model, student_latency_ms, similarity FROM pairs ORDER BY id"
    ).fetchall()
    assert rows == [
        ("pair-1", datetime(2026, 5, 8, 12), "gpt-4o", 101.0, 0.5),
        ("pair-2", datetime(2026, 5, 10, 12), "gpt-4o", 102.0, 0.5),
    ]
    assert [r["id"] for r in read.iter_records(tmp_path)] == ["pair-2", "pair-1"]


def test_compact_neither_loses_nor_duplicates_and_is_safe_to_rerun(tmp_path: Path) -> None:
    for writer in range(3):
        with write.LogWriter(tmp_path) as w:
            w.append_many(rec(writer * 100 + i, DAY - timedelta(days=i % 3)) for i in range(40))
    with write.LogWriter(tmp_path) as w:  # the same id twice (e.g. a replayed batch)
        w.append(rec(0, DAY - timedelta(days=0)))
    before = count(tmp_path)
    first = compaction.compact(tmp_path, today=date(2026, 5, 20))
    assert first.problems == [] and first.rows_written == 120 and first.duplicates_skipped == 1
    assert read.jsonl_files(tmp_path) == []
    assert count(tmp_path) == (120, 120) and before == (121, 120)
    again = compaction.compact(tmp_path, today=date(2026, 5, 20))
    assert again.rows_written == 0 and count(tmp_path) == (120, 120)


def test_compact_leaves_today_alone(tmp_path: Path) -> None:
    with write.LogWriter(tmp_path) as w:
        w.append(rec(1))
    report = compaction.compact(tmp_path, today=DAY.date())
    assert report.days == [] and len(read.jsonl_files(tmp_path)) == 1


def test_compact_after_a_crash_between_rename_and_removal(tmp_path: Path) -> None:
    with write.LogWriter(tmp_path) as w:
        w.append_many(rec(i) for i in range(10))
    files = read.jsonl_files(tmp_path)
    kept = {f: f.read_bytes() for f in files}
    compaction.compact(tmp_path, today=date(2026, 6, 1))
    for f, data in kept.items():  # the crash: the JSONL files were never removed
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    report = compaction.compact(tmp_path, today=date(2026, 6, 1))
    assert report.problems == [] and read.jsonl_files(tmp_path) == []
    assert count(tmp_path) == (10, 10)


def test_compact_keeps_damaged_files_in_quarantine(tmp_path: Path) -> None:
    with write.LogWriter(tmp_path) as w:
        w.append_many(rec(i) for i in range(5))
    path = read.jsonl_files(tmp_path)[0]
    with open(path, "a") as fh:
        fh.write('{"id": "half')
    report = compaction.compact(tmp_path, today=date(2026, 6, 1))
    assert report.rows_written == 5 and report.bad_lines == 1 and len(report.quarantined) == 1
    assert Path(report.quarantined[0]).read_text().endswith('{"id": "half')
    assert count(tmp_path) == (5, 5)


def test_import_keeps_good_lines_names_bad_ones_and_never_duplicates(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    oai = {
        "messages": [
            {"role": "user", "content": "Apa kabar?"},
            {"role": "assistant", "content": "Baik, terima kasih!"},
        ]
    }
    lines = [
        schema.dumps(rec(1)),
        "{not json",
        json.dumps(oai),
        json.dumps({"messages": [{"role": "user", "content": "no answer"}]}),
        "",
        schema.dumps(rec(2, source="twitter")),
        schema.dumps(rec(3)),
    ]
    src.write_text("\n".join(lines) + "\n")
    log_dir = tmp_path / "logs"
    report = ingest.import_file(src, log_dir, teacher_model="gpt-4o")
    assert report.imported == 3 and report.duplicates == 0
    expected = [
        (2, "not valid JSON"),
        (4, "the last message must be the assistant's (teacher's) answer"),
        (6, "'source' must be one of live, replay, playground, import, demo, not 'twitter'"),
    ]
    assert [b.line_no for b in report.bad] == [n for n, _ in expected]
    for bad, (_, reason) in zip(report.bad, expected, strict=True):
        assert bad.reason.startswith(reason)
    again = ingest.import_file(src, log_dir)
    assert again.imported == 0 and again.duplicates == 3
    assert count(log_dir) == (3, 3)
    models = {r["teacher"]["model"] for r in read.iter_records(log_dir)}
    assert models == {"gpt-4o"}


def test_compressed_parts_in_a_folder_are_read_validated_and_compacted(tmp_path: Path) -> None:
    """A bucket's parts are .jsonl.zst; copied into a folder (or imported), they read the same."""
    from shadowtutor.log import analytics, compaction, read, schema, write
    from shadowtutor.log.storage import compress

    with write.LogWriter(tmp_path) as w:
        w.append_many([rec(i) for i in range(5)])
    day = tmp_path / "jsonl" / f"date={DAY.date().isoformat()}"
    lines = b"".join(schema.dump_line(rec(i)) for i in range(5, 12))
    (day / "copied-1-abc-000001.jsonl.zst").write_bytes(compress(lines))
    (day / "broken-1-abc-000002.jsonl.zst").write_bytes(b"\x28\xb5\x2f\xfd not zstd")
    assert len(read.jsonl_files(tmp_path)) == 3
    report = read.validate_log(tmp_path)
    assert report.records == 12 and [
        b.path.endswith("broken-1-abc-000002.jsonl.zst") for b in report.bad
    ] == [True]
    good = tmp_path / "good"
    for f in read.jsonl_files(tmp_path):
        if "broken" not in f.name:
            target = good / f.relative_to(tmp_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read_bytes())
    assert count(good) == (12, 12)
    con = analytics.connect(good)
    assert analytics.count_pairs(con, analytics.Filters()) == 12
    compacted = compaction.compact(tmp_path, today=DAY.date() + timedelta(days=1))
    assert compacted.problems == [] and compacted.rows_written == 12
    assert [Path(q).name for q in compacted.quarantined] == ["broken-1-abc-000002.jsonl.zst"]
    assert count(tmp_path) == (12, 12) and read.jsonl_files(tmp_path) == []

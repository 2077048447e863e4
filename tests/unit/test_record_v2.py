"""Log schema version 2 (one record per request and student, sharing ``request_id``) next to
version 1: validation, reading v1 as the default student, the teacher counted once in the
analytics, and a student filter — in JSONL and in Parquet parts written before version 2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from shadowtutor.cost import spend
from shadowtutor.log import analytics, schema
from shadowtutor.log.analytics import Filters
from shadowtutor.log.errors import RecordError
from shadowtutor.log.write import LogWriter
from shadowtutor.review import sampling

TS = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _v1(i: int) -> dict[str, Any]:
    rec = schema.make_record(
        id=f"old-{i}",
        ts=TS - timedelta(days=1),
        messages=[{"role": "user", "content": f"old question {i}"}],
        teacher={"model": "gpt-4o-mini", "response": "t", "cost_usd": 0.01},
        student={"model": "llama3", "response": "s"},
        similarity={"method": "lexical", "score": 0.5},
    )
    rec["schema_version"] = 1
    del rec["request_id"], rec["student_name"]
    return rec


def _request(i: int, names: tuple[str, ...] = ("a", "b", "c")) -> list[dict[str, Any]]:
    rid = f"req-{i}"
    out = []
    for n, name in enumerate(names):
        out.append(
            schema.make_record(
                id=rid if n == 0 else schema.secondary_id(rid, name),
                ts=TS,
                messages=[{"role": "user", "content": f"question {i}"}],
                teacher={"model": "gpt-4o-mini", "response": "t", "cost_usd": 0.02},
                student={"model": f"m-{name}", "response": None if name == "c" else "s",
                         "error": "timeout: 1s" if name == "c" else None},
                similarity={"method": "lexical", "score": 0.9 if name == "b" else 0.4},
                request_id=rid,
                student_name=name,
            )
        )  # fmt: skip
    return out


def test_v1_reads_as_the_default_students_primary_record() -> None:
    rec = schema.validate(_v1(1))
    assert rec["request_id"] == "old-1" and rec["student_name"] == "default"
    assert schema.is_primary(rec) and rec["schema_version"] == schema.SCHEMA_VERSION == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 4}, "schema_version 4 is not supported"),
        ({"student_name": 7}, "'student_name' must be a non-empty string"),
        ({"request_id": ""}, "'request_id' must be a non-empty string"),
        ({"request_id": "x" * 65}, "longer than 64"),
    ],
)
def test_v2_fields_are_checked(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        schema.validate({**_request(1)[1], **change})


def test_secondary_ids_are_stable_and_not_primary() -> None:
    a, b, _ = _request(1)
    assert schema.is_primary(a) and not schema.is_primary(b)
    assert b["id"] == schema.secondary_id("req-1", "b") and len(b["id"]) == 32


def _v1_parquet(log_dir: Path, records: list[dict[str, Any]]) -> None:
    """A Parquet part as compaction wrote it before version 2: no request_id/student_name."""
    src = log_dir / "v1.jsonl"
    src.write_text("".join(schema.dumps(r) + "\n" for r in records))
    out = log_dir / "parquet" / "date=2026-11-29"
    out.mkdir(parents=True)
    cols = {k: v for k, v in schema.RAW_COLUMNS.items() if k not in ("request_id", "student_name")}
    spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in cols.items()) + "}"
    duckdb.execute(
        f"COPY (SELECT * FROM read_json('{src}', format='newline_delimited', columns={spec})) "
        f"TO '{out / 'part-old.parquet'}' (FORMAT parquet)"
    )
    src.unlink()


@pytest.mark.parametrize("old_as", ["jsonl", "parquet"])
def test_teacher_counted_once_and_a_student_filter(tmp_path: Path, old_as: str) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    old = [_v1(i) for i in range(4)]
    if old_as == "parquet":
        _v1_parquet(log_dir, old)
    with LogWriter(log_dir) as w:
        w.append_many(
            [r for i in range(6) for r in _request(i)] + (old if old_as == "jsonl" else [])
        )
    con = analytics.connect(log_dir)
    assert analytics.count_pairs(con, Filters()) == 6 + 4  # requests, not records
    total = spend.spend_by_day(con, Filters())["teacher_usd"].sum()
    assert total == pytest.approx(6 * 0.02 + 4 * 0.01)  # each request's teacher once
    assert analytics.count_pairs(con, Filters(student="b")) == 6
    assert analytics.count_pairs(con, Filters(student="default")) == 4
    b = spend.spend_by_day(con, Filters(student="b"))["teacher_usd"].sum()
    assert b == pytest.approx(6 * 0.02)
    assert analytics.filter_options(con).students == ["a", "b", "c", "default"]
    # the flat view (gate, review sampling) has the same columns for old and new records
    raw = analytics.connect(log_dir)
    rows = raw.execute("SELECT student_name, count(*) FROM pairs GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [("a", 6), ("b", 6), ("c", 6), ("default", 4)]
    got = sampling.sample(raw, strategy="random", size=50, filters=sampling.Filters(student="c"))
    assert got.candidates == 6 and {r["student_name"] for r in got.records} == {"c"}


def test_export_takes_a_student_filter(session) -> None:  # noqa: ANN001 (the db fixture)
    from sqlmodel import select

    from shadowtutor.accounts import permissions, users
    from shadowtutor.export import jobs
    from shadowtutor.review import workflow
    from shadowtutor.tables import Review, ReviewItem, UserCreate

    records = [r for i in range(3) for r in _request(i, ("a", "b"))] + [_v1(9)]
    workflow.enqueue_records(session=session, records=records, enqueued_by=permissions.SYSTEM)
    who = users.add_user(
        session=session,
        user=UserCreate(username="rev-v2", role="reviewer", password="password-v2"),
        actor_id=permissions.SYSTEM,
    )
    for item in session.exec(select(ReviewItem)):
        session.add(
            Review(item_id=item.id, pair_id=item.pair_id, reviewer_id=who.id,
                   student_score=4, verdict="tie", decision="approve")
        )  # fmt: skip
    session.flush()
    for students, expected in ((("b",), 3), (("default",), 1), ((), 7)):
        found = jobs.select_candidates(
            session=session, filters=jobs.ExportFilters(students=students)
        )
        assert len(found) == expected, students

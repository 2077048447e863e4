"""`shadowtutor logs show ID` and `logs tail`: reading pairs without opening files (issue 27
item 13), from JSONL and compacted Parquet alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from shadowtutor.cli import main
from shadowtutor.log import browse, compaction, schema, write

NOW = datetime.now(UTC).replace(microsecond=0)


def _pair(i: int, student: str, category: str, hours_ago: float) -> dict:
    return schema.make_record(
        id=f"{student}-{i}",
        ts=NOW - timedelta(hours=hours_ago),
        messages=[{"role": "user", "content": f"question {i} about {category}?"}],
        teacher={"model": "gpt-4o-mini", "response": f"teacher {i}", "cost_usd": 0.0001},
        student={"model": student, "response": f"student {i}", "latency_ms": 120.0},
        category=category,
        language="en",
        similarity={"method": "lexical", "score": 0.5},
        request_id=f"req-{i}",
        student_name=student,
    )


def _log(home: Path) -> None:
    old = [_pair(i, "llama", "greeting", 72 + i) for i in range(3)]  # closed days: Parquet
    new = [_pair(10 + i, s, c, 0.1 * (i + 1)) for i, (s, c) in enumerate(
        [("llama", "greeting"), ("qwen", "greeting"), ("llama", "business"), ("qwen", "casual")]
    )]  # fmt: skip
    with write.LogWriter(home / "logs") as w:
        w.append_many(old + new)
    compaction.compact(home / "logs")


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main, list(args))


def test_logs_show_prints_one_pair_whole(home: Path) -> None:
    _log(home)
    for pair_id in ("llama-10", "llama-1"):  # JSONL, then a compacted Parquet part
        out = run("logs", "show", pair_id)
        assert out.exit_code == 0, out.output
        assert f"pair {pair_id}" in out.output and "student llama" in out.output
        n = pair_id.split("-")[1]
        assert f"USER: question {n}" in out.output
        assert "TEACHER (gpt-4o-mini" in out.output and f"teacher {n}" in out.output
        assert "STUDENT (llama, 120 ms, cost unknown)" in out.output
    missing = run("logs", "show", "nope")
    assert missing.exit_code == 1 and "no pair 'nope' in the log" in missing.output


def test_logs_tail_lists_the_newest_with_filters(home: Path) -> None:
    _log(home)
    out = run("logs", "tail")
    assert out.exit_code == 0, out.output
    ids = [line.split()[3] for line in out.output.splitlines()]
    assert ids == ["llama-10", "qwen-11", "llama-12", "qwen-13", "llama-0", "llama-1", "llama-2"]
    out = run("logs", "tail", "--student", "qwen", "--category", "greeting", "--since", "2h")
    assert [line.split()[3] for line in out.output.splitlines()] == ["qwen-11"]
    out = run("logs", "tail", "--student", "llama", "-n", "2")
    assert [line.split()[3] for line in out.output.splitlines()] == ["llama-10", "llama-12"]
    assert "question 10 about greeting?" in out.output
    bad = run("logs", "tail", "--since", "yesterday-ish")
    assert bad.exit_code == 2 and "give a span like 30m" in bad.output
    none = run("logs", "tail", "--category", "nothing")
    assert none.exit_code == 0 and "no pairs match" in none.output


def test_parse_since() -> None:
    assert browse.parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert browse.parse_since("1.5d", NOW) == NOW - timedelta(days=1.5)
    assert browse.parse_since("2026-12-07", NOW) == datetime(2026, 12, 7, tzinfo=UTC)


def test_logs_show_prints_tool_calls_and_the_request_kind(home: Path) -> None:
    # a teacher's tool call has no text: `logs show` printed an empty answer for it
    call = {"name": "book_table", "arguments": {"people": 2, "time": "19:30"}}
    record = schema.make_record(
        id="tools-1",
        ts=NOW - timedelta(minutes=5),
        messages=[{"role": "user", "content": "A table for two at 19:30"}],
        teacher={"model": "claude-haiku-4-5", "response": "", "tool_calls": [call],
                 "finish_reason": "tool_use"},
        student={"model": "llama3", "response": "Sure, booked!", "finish_reason": "stop"},
        request={"kind": "tools", "tools": ["book_table"]},
        agreement={"kind": "tool_calls", "method": "tool_calls", "score": 0.0},
        protocol="anthropic.messages",
    )  # fmt: skip
    with write.LogWriter(home / "logs") as w:
        w.append_many([record])
    out = run("logs", "show", "tools-1")
    assert out.exit_code == 0, out.output
    assert "kind tools (book_table)" in out.output and "anthropic.messages" in out.output
    assert 'called book_table({"people": 2, "time": "19:30"})' in out.output
    assert "Sure, booked!" in out.output and "agreement 0.00 (tool_calls)" in out.output

"""Log schema version 3 (what was asked and answered) next to versions 1 and 2: validation,
older records read as plain ``openai.chat`` requests, and the review sample reads a v3
record's tool calls back whole, from JSONL and from a compacted Parquet part."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shadowtutor.log import analytics, compaction, schema
from shadowtutor.log.errors import RecordError
from shadowtutor.log.write import LogWriter
from shadowtutor.review import sampling

TS = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MSGS = [{"role": "user", "content": "book a table"}]
CALL = {"name": "book", "arguments": '{"city": "Rome"}'}


def _v3(i: int) -> dict[str, Any]:
    return schema.make_record(
        id=f"new-{i}",
        ts=TS,
        messages=MSGS,
        teacher={"model": "gpt-4o-mini", "response": "", "tool_calls": [CALL]},
        student={"model": "llama3", "response": "", "tool_calls": [CALL | {"arguments": {}}]},
        similarity={"method": "lexical", "score": None},
        request={"kind": "tools", "tools": ["book"], "tools_hash": "ab12"},
        agreement={"kind": "tool_calls", "method": "m", "score": 0.5, "details": {"name": 1.0}},
    )


def _v2(i: int) -> dict[str, Any]:
    rec = schema.make_record(
        id=f"old-{i}", ts=TS, messages=MSGS, teacher={"model": "gpt-4o-mini", "response": "t"}
    )
    rec["schema_version"] = 2
    for name in ("protocol", "request", "agreement"):
        del rec[name]
    return rec


def test_a_v3_record_validates_as_it_was_written() -> None:
    rec = _v3(1)
    assert rec["schema_version"] == 3 and rec["protocol"] == "openai.chat"
    assert schema.validate(json.loads(schema.dumps(rec))) == rec


def test_versions_1_and_2_read_as_plain_openai_chat_requests() -> None:
    rec = schema.validate(_v2(1))
    assert rec["protocol"] == "openai.chat"
    assert rec["request"] == {
        "kind": "plain",
        "tools": None,
        "tools_hash": None,
        "schema_hash": None,
        "features": None,
    }
    assert rec["agreement"] == {"kind": None, "method": None, "score": None, "details": None}
    assert rec["teacher"]["tool_calls"] is None and rec["teacher"]["finish_reason"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"request": {"kind": "audio"}}, "'request.kind' must be one of"),
        ({"request": {"tools": "book"}}, "'request.tools' must be a list"),
        ({"request": {"kind": "plain", "extra": 1}}, "unknown field(s) in 'request'"),
        ({"agreement": {"score": 1.5}}, "'agreement.score' must be a number from 0 to 1"),
        ({"agreement": {"details": [1]}}, "'agreement.details' must be an object"),
        ({"teacher": {"model": "t", "response": "", "tool_calls": [{"x": 1}]}}, "tool_calls"),
        ({"schema_version": 4}, "schema_version 4 is not supported"),
    ],
)
def test_a_malformed_v3_record_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message.replace("(", r"\(").replace(")", r"\)")):
        schema.validate(_v3(1) | change)


@pytest.mark.parametrize("compacted", [False, True], ids=["jsonl", "parquet"])
def test_old_and_new_records_read_together(tmp_path: Path, compacted: bool) -> None:
    log_dir = tmp_path / "log"
    with LogWriter(log_dir) as writer:
        for i in range(3):
            writer.append(_v2(i))
            writer.append(_v3(i))
    if compacted:
        compaction.compact(log_dir, today=datetime(2026, 12, 2, tzinfo=UTC).date())
    con = analytics.connect(log_dir)
    got = sampling.sample(con, strategy="random", size=10)
    by_id = {r["id"]: r for r in got.records}
    assert len(by_id) == 6
    new, old = by_id["new-0"], by_id["old-0"]
    assert new["request"]["kind"] == "tools" and new["request"]["tools"] == ["book"]
    assert new["teacher"]["tool_calls"] == [CALL]
    assert new["student"]["tool_calls"] == [CALL | {"arguments": {}}]
    assert new["agreement"]["details"] == {"name": 1.0}
    assert old["request"]["kind"] == "plain" and old["protocol"] == "openai.chat"
    assert old["teacher"]["tool_calls"] is None

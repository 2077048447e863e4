from __future__ import annotations

import json

import pytest

from shadowtutor.log import ingest, schema
from shadowtutor.log.errors import RecordError


def good(**over: object) -> dict:
    rec = schema.make_record(
        messages=[{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}],
        teacher={"model": "gpt-4o", "response": "Hello!", "latency_ms": 120.5, "cost_usd": 0.001},
        student={"model": "llama3", "response": "Hi!"},
        similarity={"method": "lexical", "score": 0.4},
    )
    rec.update(over)
    return rec


def test_a_made_record_validates_unchanged() -> None:
    rec = good()
    assert schema.validate(json.loads(schema.dumps(rec))) == rec


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "missing required field 'id'"),
        ({"ts": "yesterday"}, "'ts' is not an ISO 8601 timestamp"),
        ({"schema_version": 4}, "schema_version 4 is not supported"),
        ({"source": "twitter"}, "'source' must be one of"),
        ({"messages": []}, "'messages' must be a non-empty list"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "is not a chat role"),
        ({"teacher": {"response": "x"}}, "'teacher.model' is required"),
        ({"teacher": {"model": "gpt-4o"}}, "needs a 'response' or an 'error'"),
        ({"teacher": {"model": "m", "response": "x", "latency_ms": "fast"}}, "must be a number"),
        ({"teacher": {"model": "m", "response": "x", "cost_usd": -1}}, "must not be negative"),
        ({"similarity": {"method": "lexical", "score": 1.5}}, "from 0 to 1"),
        ({"colour": "blue"}, "unknown field(s): colour"),
    ],
)
def test_invalid_records_say_why(change: dict, reason: str) -> None:
    with pytest.raises(RecordError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        schema.validate(good(**change))


def test_timestamps_are_normalised_to_utc() -> None:
    rec = schema.validate(good(ts="2026-03-01T10:00:00+02:00"))
    assert rec["ts"] == "2026-03-01T08:00:00.000Z"


def test_openai_chat_line_becomes_a_record_with_a_stable_id() -> None:
    line = {
        "messages": [
            {"role": "system", "content": "You help."},
            {"role": "user", "content": "Ciao"},
            {"role": "assistant", "content": "Ciao! Come posso aiutarti?"},
        ]
    }
    a = ingest.parse_line(json.dumps(line))
    b = ingest.parse_line(json.dumps(line))
    assert a["id"] == b["id"] and a["id"].startswith("oai-")
    assert a["teacher"]["response"] == "Ciao! Come posso aiutarti?"
    assert [m["role"] for m in a["messages"]] == ["system", "user"]
    assert a["source"] == "import"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"messages": [{"role": "user", "content": "hi"}]', "not valid JSON"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "last message must be the assistant"),
        ('{"messages": [{"role": "assistant", "content": "hi"}]}', "no prompt before"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_bad_lines_say_why(line: str, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        ingest.parse_line(line)


def test_pseudonymize_never_keeps_the_email() -> None:
    h = schema.pseudonymize("anna@example.com")
    assert h and "anna" not in h and h == schema.pseudonymize("anna@example.com")
    assert schema.pseudonymize(None) is None


@pytest.mark.parametrize(
    "bad",
    [float("nan"), float("inf"), -float("inf"), [1.0, {"deep": [float("nan")]}]],
)
def test_a_line_never_holds_a_nan_or_an_infinity(bad: object) -> None:
    # orjson alone writes these as null: the line encoder must refuse them instead
    rec = good()
    rec["metadata"] = {"x": bad}
    with pytest.raises(ValueError):
        schema.dump_line(rec)
    with pytest.raises(RecordError, match="standard JSON"):
        schema.check_for_log(rec)


def test_an_integer_json_cannot_carry_is_refused_with_a_reason() -> None:
    rec = good()
    rec["metadata"] = {"n": 2**70}
    with pytest.raises(RecordError, match="standard JSON"):
        schema.check_for_log(rec)


def test_a_line_reads_back_as_the_record_it_was() -> None:
    rec = good()
    rec["metadata"] = {"text": 'Grüß dich 👋 \u2028 "quoted"', 3: "int key", "f": 0.1}
    line = schema.dump_line(rec)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    back = json.loads(line)
    assert back["metadata"] == {"text": 'Grüß dich 👋 \u2028 "quoted"', "3": "int key", "f": 0.1}
    assert schema.dumps(rec) == line[:-1].decode()

"""The record is defined once (``shadowtutor.log.schema``): the validator's field lists, the
DuckDB columns and the Parquet schema all come from it, and agree with it and each other."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shadowtutor.log import compaction, read, schema, write

DUCKDB_TO_ARROW = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
}


def _struct_fields(text: str) -> dict[str, str]:
    inner = text.removeprefix("STRUCT(").removesuffix(")")
    return dict(part.split(" ", 1) for part in inner.split(", "))


def test_every_field_of_the_record_is_in_the_validator_duckdb_and_parquet() -> None:
    names = [f.name for f in fields(schema.Record)]
    assert list(schema.TOP_FIELDS) == names
    assert list(schema.RAW_COLUMNS) == names
    assert schema.PARQUET_SCHEMA.names == names
    answer = [f.name for f in fields(schema.Answer)]
    assert list(schema.ANSWER_FIELDS) == answer
    assert list(_struct_fields(schema.ANSWER_STRUCT)) == answer
    for side in ("teacher", "student"):
        assert schema.RAW_COLUMNS[side] == schema.ANSWER_STRUCT
        parquet = schema.PARQUET_SCHEMA.field(side).type
        assert [parquet.field(i).name for i in range(parquet.num_fields)] == answer


@pytest.mark.parametrize("name", schema.TOP_FIELDS)
def test_duckdb_and_parquet_types_agree(name: str) -> None:
    duck = schema.RAW_COLUMNS[name]
    arrow = schema.PARQUET_SCHEMA.field(name).type
    if duck.startswith("STRUCT("):
        members = _struct_fields(duck)
        assert pa.types.is_struct(arrow) and arrow.num_fields == len(members)
        for i, (member, kind) in enumerate(members.items()):
            assert arrow.field(i).name == member
            assert arrow.field(i).type == DUCKDB_TO_ARROW[kind], (name, member)
    else:
        assert arrow == DUCKDB_TO_ARROW[duck], name


def test_a_built_record_has_exactly_the_defined_fields_and_validates() -> None:
    rec = schema.make_record(
        messages=[{"role": "user", "content": "q"}], teacher={"model": "t", "response": "a"}
    )
    assert tuple(rec) == schema.TOP_FIELDS
    for side in ("teacher", "student"):
        assert tuple(rec[side]) == schema.ANSWER_FIELDS
    assert tuple(rec["similarity"]) == tuple(f.name for f in fields(schema.Similarity))
    assert tuple(rec["routing"]) == tuple(f.name for f in fields(schema.Routing))
    assert schema.validate(rec) == rec


def test_a_compacted_part_has_the_record_parquet_schema(tmp_path: Path) -> None:
    rec = schema.make_record(
        ts=datetime(2026, 5, 10, 12, tzinfo=UTC),
        messages=[{"role": "user", "content": "q"}],
        teacher={"model": "t", "response": "a", "prompt_tokens": 3, "cost_usd": 0.1},
        student={"model": "s", "response": "b", "latency_ms": 12.5},
    )
    with write.LogWriter(tmp_path) as writer:
        writer.append(rec)
    report = compaction.compact(tmp_path, today=datetime(2026, 5, 11, tzinfo=UTC).date())
    assert report.rows_written == 1
    (part,) = read.parquet_files(tmp_path)
    written = pq.read_schema(part)
    for expected in schema.PARQUET_SCHEMA:
        _same_type(expected.name, expected.type, written.field(expected.name).type)


def _same_type(name: str, expected: pa.DataType, got: pa.DataType) -> None:
    """The written type is the record's (a string may be written as JSON text), member by
    member in a struct."""
    if pa.types.is_string(expected):
        assert (
            pa.types.is_string(got)
            or pa.types.is_large_string(got)
            or str(got).startswith("extension<arrow.json")
        ), (name, got)
    elif pa.types.is_struct(expected):
        assert pa.types.is_struct(got) and got.num_fields == expected.num_fields, (name, got)
        for i in range(expected.num_fields):
            assert got.field(i).name == expected.field(i).name, (name, got)
            _same_type(
                f"{name}.{expected.field(i).name}", expected.field(i).type, got.field(i).type
            )
    else:
        assert got == expected, (name, got)


BAIT = "![](http://127.0.0.1:9/x.png)"


@pytest.mark.parametrize(
    "name", ["en", "pt-BR", "llama3.1:8b", "hf.co/org/Model-GGUF:Q4_K_M", "small talk", "日本語"]
)
def test_real_labels_are_valid(name: str) -> None:
    assert schema.label_problem(name) is None


@pytest.mark.parametrize("name", [BAIT, "<img src=x>", "x" * 101, "  ", "a\nb", ":red[x]"])
def test_labels_that_carry_markup_or_are_too_long_are_invalid(name: str) -> None:
    assert schema.label_problem(name)


def test_the_written_record_never_carries_an_invalid_label() -> None:
    """Issue 27 item 2: the proxy stored `X-ShadowTutor-Language: ![](...)` verbatim."""
    record = schema.make_record(
        messages=[{"role": "user", "content": "hi"}],
        teacher={"model": f"gpt {BAIT}", "response": "hello"},
        student={"model": "llama3", "response": "hi"},
        category="greeting",
        language=BAIT,
    )
    written = schema.check_for_log(record)
    assert written["language"] is None and written["category"] == "greeting"
    assert written["teacher"]["model"] == "invalid" and written["student"]["model"] == "llama3"
    assert written["metadata"]["invalid_labels"] == ["language", "teacher.model"]
    assert BAIT not in schema.dumps(written)
    assert record["language"] == BAIT  # the caller's dict is left as it was

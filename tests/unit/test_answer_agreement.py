"""Answers compared by what they are (``shadowtutor.collect.agreement``): tool calls by
function and arguments as JSON, JSON answers by schema validity and fields, and a tool call
against a text answer is a disagreement, never a similarity of an empty string."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shadowtutor.collect import agreement

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "book",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
                "required": ["city"],
            },
        },
    }
]


def calls(*pairs: tuple[str, Any]) -> dict[str, Any]:
    return {"response": "", "tool_calls": [{"name": n, "arguments": a} for n, a in pairs]}


def test_the_same_call_agrees_whatever_the_key_order_number_form_and_argument_shape() -> None:
    teacher = calls(("book", json.dumps({"city": "Rome", "people": 2})))
    student = calls(("book", {"people": 2.0, "city": "Rome"}))  # Ollama: an object
    found = agreement.tool_calls(teacher, student, TOOLS)
    assert found["kind"] == "tool_calls" and found["method"] == agreement.TOOLS_METHOD
    assert found["score"] == 1.0
    assert found["details"]["same_functions"] is True


@pytest.mark.parametrize(
    ("student", "score", "parts"),
    [
        (calls(("book", '{"city": "Rome", "people": 3}')), 2 / 3, (1.0, 1.0, 0.0)),
        (calls(("book", '{"city": "Paris", "people": 2}')), 1 / 3, (1.0, 0.0, 0.0)),
        (calls(("cancel", '{"city": "Rome", "people": 2}')), 0.0, (0.0, 0.0, 0.0)),
    ],
    ids=["other optional argument", "other required argument", "other function"],
)
def test_a_call_is_graded_by_name_required_and_all_arguments(
    student: dict[str, Any], score: float, parts: tuple[float, float, float]
) -> None:
    teacher = calls(("book", '{"city": "Rome", "people": 2}'))
    found = agreement.tool_calls(teacher, student, TOOLS)
    assert found["score"] == pytest.approx(score)
    d = found["details"]
    assert (d["name"], d["required"], d["arguments"]) == parts


def test_a_tool_call_against_a_text_answer_is_a_disagreement() -> None:
    teacher = calls(("book", '{"city": "Rome"}'))
    found = agreement.tool_calls(teacher, {"response": "I booked it.", "tool_calls": None})
    assert found["score"] == 0.0 and found["details"]["student_answered"] == "text"
    reverse = agreement.tool_calls({"response": "Sure."}, teacher)
    assert reverse["score"] == 0.0 and reverse["details"]["teacher_answered"] == "text"


def test_a_missing_call_counts_against_the_score() -> None:
    teacher = calls(("book", "{}"), ("book", '{"city": "Rome"}'))
    found = agreement.tool_calls(teacher, calls(("book", "{}")))
    assert found["score"] == pytest.approx(0.5)
    assert found["details"]["same_functions"] is False


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
    "required": ["city", "people"],
}


@pytest.mark.parametrize(
    ("student", "valid", "fields", "score"),
    [
        ('{"people": 2, "city": "Rome"}', True, 1.0, 1.0),
        ('{"city": "Rome", "people": 3}', True, 0.5, 0.5),
        ('{"city": "Rome"}', False, 0.5, 0.0),
        ("Rome, two people", False, 0.0, 0.0),
    ],
    ids=["same", "one field differs", "invalid", "not JSON"],
)
def test_a_json_answer_is_checked_against_the_schema_and_field_by_field(
    student: str, valid: bool, fields: float, score: float
) -> None:
    teacher = {"response": '{"city": "Rome", "people": 2}'}
    found = agreement.json_answers(teacher, {"response": student}, SCHEMA)
    assert found["kind"] == "json" and found["method"] == agreement.JSON_METHOD
    assert found["details"]["valid"] is valid
    assert found["details"]["fields"] == fields
    assert found["score"] == score


def test_schema_of_a_request() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}
    assert agreement.schema_of({"response_format": fmt}) == SCHEMA
    assert agreement.schema_of({"response_format": {"type": "json_object"}}) == {}
    assert agreement.schema_of({"response_format": {"type": "text"}}) is None
    assert agreement.schema_of({}) is None


def test_normalised_json_values() -> None:
    assert agreement.normalised({"b": 1.0, "a": [2, {"d": 1, "c": 0.5}]}) == {
        "a": [2, {"c": 0.5, "d": 1}],
        "b": 1,
    }
    assert agreement.normalised(True) is True  # a boolean is not the number 1


def test_a_schema_is_checked_once_and_a_broken_one_is_named() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    agreement._validator.cache_clear()
    for got in ('{"n": 1}', '{"n": "1"}', "{}"):
        agreement.json_answers({"response": '{"n": 1}'}, {"response": got}, schema)
    assert agreement._validator.cache_info().misses == 1  # one check of the schema, 3 answers
    bad = agreement.json_answers({"response": "{}"}, {"response": "{}"}, {"type": 7})
    assert bad["details"]["error"].startswith("the schema is not valid:")
    wrong = agreement.json_answers({"response": '{"n": 1}'}, {"response": '{"n": "1"}'}, schema)
    assert wrong["details"] == {
        "valid": False,
        "fields": 0.0,
        "error": "'1' is not of type 'integer'",
    }

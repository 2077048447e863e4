"""The export of tools and JSON pairs (issue 25, "exported as they are"): SFT lines in OpenAI's
fine-tuning function-calling format (``tools``, assistant ``tool_calls``, ``tool`` messages),
JSON-schema answers with their response format, preference pairs for disagreeing calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from shadowtutor.export import jobs
from shadowtutor.export.build import Example, _dumps, _LineWriter
from tests.support.exportdata import add_pair, add_user

BOOK = {
    "type": "function",
    "function": {
        "name": "book_table",
        "description": "Book a table",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
            "required": ["city", "people"],
        },
    },
}
CANCEL = {"type": "function", "function": {"name": "cancel", "parameters": {"type": "object"}}}
TOOLS_REQUEST = {
    "kind": "tools",
    "tools": ["book_table", "cancel"],
    "features": {"tools": [BOOK, CANCEL], "tool_choice": "auto", "parallel_tool_calls": False},
}
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "contact",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"email": {"type": "string"}, "name": {"type": "string"}},
            "required": ["name"],
        },
    },
}
LINE_KEYS = {"messages", "tools", "parallel_tool_calls", "response_format"}


def check_openai_line(line: dict[str, Any]) -> None:
    """One SFT line as OpenAI's fine-tuning takes it (chat, function calling, a JSON schema):
    only the known top-level keys; tools as ``{type: function, function: {name, ...}}``;
    every call of the messages one of the tools, its arguments a JSON string, answered by a
    ``tool`` message carrying its id (jobs.check_chat: the order and the message keys)."""
    assert set(line) <= LINE_KEYS, sorted(line)
    jobs.check_chat(line["messages"])
    names = set()
    for tool in line.get("tools", []):
        assert tool["type"] == "function" and isinstance(tool["function"]["name"], str)
        assert isinstance(tool["function"].get("parameters", {}), dict)
        names.add(tool["function"]["name"])
    for msg in line["messages"]:
        for call in msg.get("tool_calls", []):
            assert call["function"]["name"] in names, call
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
    if "response_format" in line:
        fmt = line["response_format"]
        assert fmt["type"] in ("json_object", "json_schema")
        json.loads(line["messages"][-1]["content"])  # the answer is the JSON it asked for


def call(name: str, arguments: str) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


@pytest.fixture
def admin(session: Session) -> int:
    return add_user(session, "admin")


@pytest.fixture
def reviewer(session: Session) -> int:
    return add_user(session, "reviewer")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def all_lines(root: Path, kind: str) -> list[dict[str, Any]]:
    return [line for s in jobs.SPLITS for line in lines(root / f"{kind}_{s}.jsonl")]


def test_tools_and_json_pairs_are_exported_in_openai_form(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    # a disagreeing call (other arguments): SFT line plus a preference pair
    add_pair(
        session, reviewer, "t-disagree", question="Table for 2 in Rome", teacher="",
        student="", request=TOOLS_REQUEST,
        teacher_calls=[call("book_table", '{"city": "Rome", "people": 2}')],
        student_calls=[call("book_table", '{"city": "Roma"}')],
    )  # fmt: skip
    # an agreeing call (key order and 2.0 against 2 aside): no preference pair
    add_pair(
        session, reviewer, "t-agree", question="Table for 3 in Pisa", teacher="",
        student="", request=TOOLS_REQUEST,
        teacher_calls=[call("book_table", '{"city": "Pisa", "people": 3}')],
        student_calls=[call("book_table", '{"people": 3.0, "city": "Pisa"}')],
    )  # fmt: skip
    # a text answer where the teacher calls a tool: disagreeing too
    add_pair(
        session, reviewer, "t-text", question="Cancel my booking", teacher="",
        student="Sure, it is cancelled.", request=TOOLS_REQUEST,
        teacher_calls=[call("cancel", "{}")],
    )  # fmt: skip
    # an earlier tool round in the conversation, the target a text answer after it
    add_pair(
        session, reviewer, "t-round", question="Book Milan for 4", teacher="Booked: table 7.",
        student="Booked.", request=TOOLS_REQUEST,
        after=[
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_9", "type": "function",
                 "function": {"name": "book_table", "arguments": '{"city":"Milan","people":4}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_9", "content": '{"table": 7}'},
        ],
    )  # fmt: skip
    # a correction written as tool calls
    add_pair(
        session, reviewer, "t-corrected", question="Two people, Turin", teacher="",
        student="", request=TOOLS_REQUEST,
        teacher_calls=[call("book_table", '{"city": "Turin"}')],
        reviews=[{"corrected_answer": '[{"name": "book_table", '
                  '"arguments": {"city": "Turin", "people": 2}}]'}],
    )  # fmt: skip
    # the older `functions` form
    add_pair(
        session, reviewer, "t-functions", question="Cancel please", teacher="",
        request={"kind": "tools", "features": {"functions": [CANCEL["function"]]}},
        teacher_calls=[call("cancel", "{}")], student_calls=[call("cancel", "{}")],
    )  # fmt: skip
    # a JSON-schema answer, with its schema
    add_pair(
        session, reviewer, "j-schema", question="Extract: Ada Lovelace, Pisa",
        teacher='{"name": "Ada Lovelace"}', student='{"name": "Ada"}',
        request={"kind": "json_schema", "features": {"response_format": SCHEMA}},
    )  # fmt: skip
    result = jobs.run_export(session=session, actor_id=admin, export_root=tmp_path)
    sft = all_lines(result.path, "sft")
    assert len(sft) == result.counts["examples"] == 7
    for line in sft:
        check_openai_line(line)
    by_question = {line["messages"][1]["content"]: line for line in sft}

    line = by_question["Table for 2 in Rome"]
    assert line["tools"] == [BOOK, CANCEL] and line["parallel_tool_calls"] is False
    (target,) = line["messages"][-1]["tool_calls"]
    assert set(line["messages"][-1]) == {"role", "tool_calls"}  # no empty content beside
    assert target["function"] == {
        "name": "book_table",
        "arguments": '{"city": "Rome", "people": 2}',
    }

    roles = [m["role"] for m in by_question["Book Milan for 4"]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    assert by_question["Book Milan for 4"]["messages"][3]["tool_call_id"] == "call_9"
    assert by_question["Book Milan for 4"]["messages"][-1] == {
        "role": "assistant", "content": "Booked: table 7.",
    }  # fmt: skip

    (fixed,) = by_question["Two people, Turin"]["messages"][-1]["tool_calls"]
    assert json.loads(fixed["function"]["arguments"]) == {"city": "Turin", "people": 2}

    legacy = by_question["Cancel please"]
    assert legacy["tools"] == [CANCEL] and "parallel_tool_calls" not in legacy

    extraction = by_question["Extract: Ada Lovelace, Pisa"]
    assert extraction["response_format"] == SCHEMA and "tools" not in extraction

    prefs = all_lines(result.path, "preference")
    rejected = {p["prompt"][1]["content"]: p for p in prefs}
    assert set(rejected) == {"Table for 2 in Rome", "Cancel my booking"}
    rome = rejected["Table for 2 in Rome"]
    assert rome["tools"] == [BOOK, CANCEL]
    assert json.loads(rome["rejected"][0]["tool_calls"][0]["function"]["arguments"]) == {
        "city": "Roma"
    }
    assert rejected["Cancel my booking"]["rejected"] == [
        {"role": "assistant", "content": "Sure, it is cancelled."}
    ]
    for p in prefs:
        jobs.check_chat([*p["prompt"], *p["chosen"]])
        jobs.check_chat([*p["prompt"], *p["rejected"]])
    assert sum(result.counts["per_kind"]["tools"].values()) == 6
    assert sum(result.counts["per_kind"]["json_schema"].values()) == 1
    assert result.counts["tools_without_definitions"] == 0
    readme = (result.path / "README.md").read_text(encoding="utf-8")
    assert "Examples by request kind: json_schema 1, tools 6." in readme
    csv_text = (result.path / "pairs.csv").read_text(encoding="utf-8")
    assert '""name"": ""book_table""' in csv_text  # the calls as JSON in the target column


def test_a_tools_pair_without_its_definitions_is_counted(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    add_pair(
        session, reviewer, "old", question="Cancel", teacher="",
        request={"kind": "tools", "tools": ["cancel"]},
        teacher_calls=[call("cancel", "{}")],
    )  # fmt: skip
    result = jobs.run_export(session=session, actor_id=admin, export_root=tmp_path)
    assert result.counts["tools_without_definitions"] == 1
    (line,) = all_lines(result.path, "sft")
    assert "tools" not in line and line["messages"][-1]["tool_calls"]


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "x",
          "content": "r"}], "cannot be fine-tuned"),
        ([{"role": "user", "content": "q"},
          {"role": "assistant", "tool_calls": [{"id": "a", "type": "function",
           "function": {"name": "f", "arguments": "{}"}}]},
          {"role": "user", "content": "q2"}], "not followed by the tool's answer"),
    ],
)  # fmt: skip
def test_tool_messages_follow_their_call(messages: list, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        jobs.normalize_prompt(messages)


@pytest.mark.parametrize(
    ("assistant", "ok"),
    [
        ({"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
         True),
        ({"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": {}}}]},
         False),  # arguments must be a JSON string
        ({"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{x"}}]},
         False),
        ({"role": "assistant", "tool_calls": []}, False),
        ({"role": "assistant", "tool_calls": [{"id": "a", "name": "f"}]}, False),
    ],
)  # fmt: skip
def test_check_chat_takes_openai_tool_calls(assistant: dict, ok: bool) -> None:
    messages = [{"role": "user", "content": "q"}, assistant]
    if ok:
        jobs.check_chat(messages)
        with pytest.raises(ValueError, match="answer tool call"):  # the call left unanswered
            jobs.check_chat([*messages, {"role": "assistant", "content": "done"}])
        jobs.check_chat(
            [*messages, {"role": "tool", "tool_call_id": "a", "content": "r"},
             {"role": "assistant", "content": "done"}]
        )  # fmt: skip
    else:
        with pytest.raises(ValueError):
            jobs.check_chat(messages)


def test_the_fast_writer_leaves_tool_lines_to_the_reference_encoding() -> None:
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    e = Example(
        pair_id="p", conversation="c", language="en", category="x", source="live", ts="",
        prompt=[{"role": "user", "content": "q"}], target="", target_source="teacher",
        teacher="", student="text", student_score=4, student_worse=False, tags=[],
        kind="tools", extras={"tools": [CANCEL]}, target_calls=calls,
    )  # fmt: skip
    writer = _LineWriter()
    assert writer.sft(e) == _dumps(e.sft())
    assert writer.preference(e) == _dumps(e.preference())
    assert json.loads(writer.sft(e))["tools"] == [CANCEL]

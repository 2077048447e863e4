"""The Review page on a tools pair and a JSON-schema pair (issue 25, "reviewed as they are"):
tool calls side by side as formatted JSON code, the definitions and the schema at hand, the
same scores and tags."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.log import schema
from shadowtutor.log.write import LogWriter
from shadowtutor.review import taxonomy, workflow
from shadowtutor.tables import Review
from tests.support.apputil import page_as

NOW = datetime.now(UTC)
HOSTILE = "![x](http://evil.example/t.png) <script>alert(1)</script> **bold**"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "book_table",
            "description": "Book a table. " + HOSTILE,
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
                "required": ["city", "people"],
            },
        },
    },
    {"type": "function", "function": {"name": "cancel", "parameters": {"type": "object"}}},
]
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "contact",
        "schema": {"type": "object", "properties": {"email": {"type": "string"}}},
    },
}


def tools_record() -> dict:
    return schema.make_record(
        id="tools-1",
        ts=NOW - timedelta(hours=1),
        source="demo",
        messages=[
            {"role": "user", "content": "Book for 2 in Rome, then cancel my Milan one"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "cancel", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "cancelled " + HOSTILE},
            {"role": "user", "content": "Now Rome please"},
        ],
        teacher={
            "model": "gpt-4o-mini",
            "response": "",
            "tool_calls": [{"name": "book_table", "arguments": '{"city": "Rome", "people": 2}'}],
            "finish_reason": "tool_calls",
        },
        student={
            "model": "llama3",
            "response": "",
            "tool_calls": [{"name": "book_table", "arguments": '{"city": "' + HOSTILE + '"}'}],
            "finish_reason": "tool_calls",
        },
        request={
            "kind": "tools",
            "tools": ["book_table", "cancel"],
            "tools_hash": "abc",
            "features": {"tools": TOOLS, "tool_choice": "auto"},
        },
        agreement={
            "kind": "tool_calls",
            "method": "tool_calls",
            "score": 0.5,
            "details": {"name": 1.0, "required": 0.5, "all": 0.0},
        },
    )


def json_record() -> dict:
    return schema.make_record(
        id="json-1",
        ts=NOW - timedelta(hours=2),
        source="demo",
        messages=[{"role": "user", "content": "Extract: mail me at a@b.c"}],
        teacher={"model": "gpt-4o-mini", "response": '{"email":"a@b.c"}'},
        student={"model": "llama3", "response": '{"email": "a@b"}'},
        request={
            "kind": "json_schema",
            "schema_hash": "def",
            "features": {"response_format": SCHEMA_FORMAT},
        },
        agreement={"kind": "json", "method": "json", "score": 0.0},
    )


@pytest.fixture
def queued_tools(migrated):
    recs = [tools_record(), json_record()]
    with LogWriter(migrated.log_path) as writer:
        writer.append_many(recs)
    with db.session_scope(migrated.db_url) as s:
        taxonomy.seed_default_tags(session=s, actor_id=permissions.SYSTEM)
        workflow.enqueue_records(
            session=s, records=recs[:1], strategy="random", enqueued_by=permissions.SYSTEM
        )
        workflow.enqueue_records(
            session=s, records=recs[1:], strategy="random", enqueued_by=permissions.SYSTEM
        )
    return migrated


def test_tool_calls_are_reviewed_as_json_code_with_their_definitions(queued_tools) -> None:
    url = queued_tools.db_url
    at = page_as("pages/review.py", url, "reviewer").run()
    assert not at.exception
    codes = [c.value for c in at.code]
    json_codes = [c.value for c in at.code if c.language == "json"]
    # both answers' calls, formatted, their arguments shown parsed
    teacher_calls = [{"name": "book_table", "arguments": {"city": "Rome", "people": 2}}]
    student_calls = [{"name": "book_table", "arguments": {"city": HOSTILE}}]
    assert json.dumps(teacher_calls, indent=2) in json_codes
    assert json.dumps(student_calls, indent=2, ensure_ascii=False) in json_codes
    # the definitions (and tool_choice) at hand, as code
    assert json.dumps(TOOLS, indent=2, ensure_ascii=False) in json_codes
    assert '"auto"' in json_codes
    # the conversation's earlier call and the tool's answer
    earlier = [
        {"id": "call_1", "type": "function", "function": {"name": "cancel", "arguments": {}}}
    ]
    assert json.dumps(earlier, indent=2) in json_codes  # its arguments shown parsed too
    assert "cancelled " + HOSTILE in codes
    rendered = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert not any("<script>" in v or "](http" in v for v in rendered)
    captions = " ".join(c.value for c in at.caption)
    assert "Request kind tools" in captions and "finish tool\\_calls" in captions
    assert "agreement (tool\\_calls) 0.50" in captions
    assert "were not kept with this pair" not in captions  # they were
    # the same scores and tags as any pair
    item = at.session_state["review_item_id"]
    p = f"q{item}_"
    at.radio(key=f"{p}left").set_value(2)
    at.radio(key=f"{p}right").set_value(5)
    at.radio(key=f"{p}verdict").set_value("right")
    at.multiselect(key=f"{p}tags").set_value(["robotic"])
    at.button(key=f"{p}approve").click().run()
    assert not at.exception
    with db.session_scope(url) as s:
        (saved,) = s.exec(select(Review)).all()
    assert (saved.student_score, saved.teacher_score, saved.verdict, saved.tags) == (
        2, 5, "teacher", ["robotic"],
    )  # fmt: skip
    # the next pair: a JSON-schema one, its schema at hand and both answers formatted
    json_codes = [c.value for c in at.code if c.language == "json"]
    assert json.dumps(SCHEMA_FORMAT, indent=2) in json_codes
    assert json.dumps({"email": "a@b.c"}, indent=2) in json_codes
    assert json.dumps({"email": "a@b"}, indent=2) in json_codes
    assert "Request kind json\\_schema" in " ".join(c.value for c in at.caption)


def test_a_pair_without_kept_definitions_says_so(migrated) -> None:
    rec = tools_record()
    rec["request"]["features"] = None
    with db.session_scope(migrated.db_url) as s:
        workflow.enqueue_records(
            session=s, records=[rec], strategy="random", enqueued_by=permissions.SYSTEM
        )
    at = page_as("pages/review.py", migrated.db_url, "reviewer").run()
    assert not at.exception
    assert any("were not kept with this pair" in c.value for c in at.caption)

"""`shadowtutor replay` of tools and JSON-schema requests (issue 25): the student gets the
line's tools and schema (in its own API's form), the record compares by what the answers are,
and a student that refuses a feature is counted as unsupported, not as failing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shadowtutor.cli import main
from shadowtutor.config import Settings
from shadowtutor.log import read, schema
from shadowtutor.testing.modelserver import ModelServer

BOOK = {
    "type": "function",
    "function": {
        "name": "book_table",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "contact",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        },
    },
}


@pytest.fixture
def env(home: Path, teacher: ModelServer, student: ModelServer, monkeypatch) -> None:
    monkeypatch.setenv("SHADOWTUTOR_TEACHER_BASE_URL", teacher.openai_url)
    monkeypatch.setenv("SHADOWTUTOR_TEACHER_API_KEY", "sk-test")
    monkeypatch.setenv("SHADOWTUTOR_STUDENT_BASE_URL", student.url)
    monkeypatch.setenv("SHADOWTUTOR_STUDENT_TIMEOUT_S", "2")


def tools_record() -> dict[str, Any]:
    return schema.make_record(
        id="rec-tools",
        ts=schema.parse_ts("2026-10-01T10:00:00Z"),
        messages=[{"role": "user", "content": "a table in Rome"}],
        teacher={
            "model": "gpt-4o-mini",
            "response": "",
            "tool_calls": [{"name": "book_table", "arguments": '{"city": "Rome"}'}],
            "finish_reason": "tool_calls",
        },
        request={
            "kind": "tools",
            "tools": ["book_table"],
            "features": {"tools": [BOOK], "tool_choice": "auto"},
        },
    )


def lines(path: Path, objs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path


def test_replay_sends_the_tools_and_the_schema_to_the_student(
    env: None, tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    path = lines(
        tmp_path / "in.jsonl",
        [
            tools_record(),
            # an OpenAI request line without an answer: the teacher is asked, with the schema
            {"messages": [{"role": "user", "content": "extract Ada"}], "response_format": FORMAT},
        ],
    )
    result = CliRunner().invoke(main, ["replay", str(path), "--concurrency", "1"])
    assert result.exit_code == 0, result.output
    bodies = [b for p, b in student.requests if p == "/api/chat"]
    by_prompt = {b["messages"][-1]["content"]: b for b in bodies}
    assert by_prompt["a table in Rome"]["tools"] == [BOOK]  # Ollama's own tools field
    assert by_prompt["extract Ada"]["format"] == FORMAT["json_schema"]["schema"]
    [t_body] = [b for p, b in teacher.requests if p == "/v1/chat/completions"]
    assert t_body["response_format"] == FORMAT
    recs = {r["messages"][-1]["content"]: r for r in read.iter_records(Settings.load().log_path)}
    tools = recs["a table in Rome"]
    assert tools["source"] == "replay" and tools["request"]["kind"] == "tools"
    assert tools["request"]["features"]["tools"] == [BOOK]
    assert tools["student"]["tool_calls"][0]["name"] == "book_table"
    assert tools["agreement"]["kind"] == "tool_calls" and tools["agreement"]["score"] is not None
    assert tools["similarity"]["score"] is None  # no similarity of empty text
    extraction = recs["extract Ada"]
    assert extraction["request"]["kind"] == "json_schema"
    assert extraction["agreement"]["kind"] == "json"
    assert json.loads(extraction["student"]["response"])["name"]


def test_a_student_refusing_tools_is_unsupported_not_failing(
    env: None, tmp_path: Path, student: ModelServer
) -> None:
    student.refuse = {"tools"}
    path = lines(tmp_path / "in.jsonl", [tools_record()])
    result = CliRunner().invoke(main, ["replay", str(path)])
    assert result.exit_code == 0, result.output
    assert "student errors 0, student unsupported 1" in result.output
    (rec,) = read.iter_records(Settings.load().log_path)
    assert rec["student"]["error"].startswith("unsupported: tools")

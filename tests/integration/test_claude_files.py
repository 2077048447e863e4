"""Claude-style conversation files (Anthropic's Messages format) imported and replayed,
besides OpenAI chat JSONL (log/ingest.py, log/claude.py, collect/replay.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shadowtutor.collect import replay
from shadowtutor.config import Settings
from shadowtutor.log import claude, ingest, read
from shadowtutor.log.errors import RecordError
from shadowtutor.testing.modelserver import ModelServer

STUDENT = {"models": ["llama3"], "answer": "I am fine thank you"}

WITH_TOOLS = {
    "model": "claude-sonnet-4-5-20250929",
    "system": [{"type": "text", "text": "You help with weather."}],
    "messages": [
        {"role": "user", "content": "weather in Rome?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                }
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "It is sunny in Rome."}]},
    ],
    "tags": ["support"],
}
PLAIN_OPENAI = {
    "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
}
OPEN_PROMPT = {"system": "Be brief.", "messages": [{"role": "user", "content": "say hi"}]}


def write(path: Path, objs: list[Any]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path


def test_a_claude_line_is_told_from_an_openai_line() -> None:
    assert claude.is_claude(WITH_TOOLS) and claude.is_claude(OPEN_PROMPT)
    assert not claude.is_claude(PLAIN_OPENAI)


def test_import_reads_the_messages_format(tmp_path: Path) -> None:
    path = write(tmp_path / "claude.jsonl", [WITH_TOOLS, PLAIN_OPENAI, {"system": "x"}])
    report = ingest.import_file(path, tmp_path / "log")
    assert report.imported == 2 and len(report.bad) == 1
    assert "'messages' list" in report.bad[0].reason
    recs = {r["protocol"]: r for r in read.iter_records(tmp_path / "log")}
    rec = recs["anthropic.messages"]
    assert rec["messages"] == [
        {"role": "system", "content": "You help with weather."},
        {"role": "user", "content": "weather in Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
    ]
    assert rec["teacher"]["response"] == "It is sunny in Rome."
    assert rec["teacher"]["model"] == "claude-sonnet-4-5-20250929"
    assert rec["metadata"] == {"tags": ["support"]} and rec["id"].startswith("claude-")
    assert recs["openai.chat"]["teacher"]["response"] == "hello"
    again = ingest.import_file(path, tmp_path / "log")  # the same ids: nothing doubled
    assert again.imported == 0 and again.duplicates == 2


def test_a_claude_line_without_a_prompt_is_refused() -> None:
    line = {"system": "s", "messages": [{"role": "assistant", "content": "hi"}]}
    with pytest.raises(RecordError, match="no prompt"):
        ingest.parse_line(json.dumps(line))


def test_replay_of_claude_lines(
    home: Path, teacher: ModelServer, student: ModelServer, tmp_path: Path
) -> None:
    settings = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(home),
            "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
            "SHADOWTUTOR_TEACHER_API_KEY": "sk-test",
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_STUDENT_TIMEOUT_S": "2",
        }
    )
    path = write(tmp_path / "conv.jsonl", [WITH_TOOLS, OPEN_PROMPT])
    report = replay.replay(path, settings, concurrency=1, teacher_model="gpt-4o-mini")
    assert report.replayed == 2 and report.teacher_called == 1 and not report.bad
    recs = sorted(read.iter_records(settings.log_path), key=lambda r: r["messages"][0]["content"])
    assert [r["protocol"] for r in recs] == ["anthropic.messages"] * 2
    asked, answered = recs
    assert asked["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "say hi"},
    ]
    assert asked["teacher"]["response"] == "echo: say hi"  # the configured teacher asked
    assert answered["teacher"]["response"] == "It is sunny in Rome."
    assert {r["student"]["response"] for r in recs} == {"I am fine thank you"}
    assert all(r["source"] == "replay" for r in recs)

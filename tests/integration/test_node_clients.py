"""The official Node `openai` client (tests/node, installed by `make node-deps`) through the
proxy (issue 25): a tools request and a JSON-schema request, complete and streamed (tool-call
deltas assembled by the app), against the loopback teacher and student; the app gets the
teacher's tool call and JSON, and the records carry both sides' calls / JSON and their
agreement, the student having got the tools and the schema in the Ollama API's form."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import RunningProxy, collector_for, records

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
MSG = "book a table for two in Rome"
TOOLS = [
    {
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
]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "booking",
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
            "required": ["city", "people"],
        },
    },
}
# what the loopback teacher answers (testing.structured: arguments filled from the schema)
TEACHER_ARGS = {"city": MSG, "people": 1}

pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("Node is not installed (the Node client tests need it)")
    if not (NODE_DIR / "node_modules" / "openai" / "package.json").is_file():
        pytest.fail("the Node openai client is not installed: run `make node-deps` (CI does)")
    return found


def test_node_openai_client_tools_and_json_schema_through_the_proxy(
    node: str, tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    env = {"SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url, "SHADOWTUTOR_TEACHER_API_KEY": "k"}
    with collector_for(tmp_path, student, env) as c:
        running = RunningProxy(c.settings, c)
        try:
            done = subprocess.run(
                [node, str(NODE_DIR / "tools_through_proxy.mjs")],
                env=os.environ
                | {
                    "BASE_URL": f"{running.url}/v1",
                    "TOOLS": json.dumps(TOOLS),
                    "SCHEMA": json.dumps(SCHEMA),
                },
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            logged = records(c, expect=4)
        finally:
            running.close()
    got = json.loads(done.stdout)
    # the app got the teacher's tool call and JSON, complete and streamed
    assert got["tools"] == {"name": "book_table", "arguments": TEACHER_ARGS}
    assert got["tools_finish"] == "tool_calls"
    assert got["tools_stream"]["calls"] == [{"name": "book_table", "arguments": TEACHER_ARGS}]
    assert got["tools_stream"]["deltas"] >= 2  # the call came in pieces
    assert got["json"] == got["json_stream"] == TEACHER_ARGS
    assert teacher.count("/v1/chat/completions") == 4
    # the records: both sides' calls or JSON, the agreement, no similarity of empty text
    kinds = sorted(r["request"]["kind"] for r in logged)
    assert kinds == ["json_schema", "json_schema", "tools", "tools"]
    for record in logged:
        assert record["similarity"]["score"] is None
        assert record["agreement"]["score"] is not None
        if record["request"]["kind"] == "tools":
            (call,) = record["teacher"]["tool_calls"]  # streamed deltas assembled too
            assert (call["name"], json.loads(call["arguments"])) == ("book_table", TEACHER_ARGS)
            assert record["student"]["tool_calls"][0]["name"] == "book_table"
            assert record["agreement"]["kind"] == "tool_calls"
            assert record["request"]["features"]["tools"] == TOOLS
        else:
            assert json.loads(record["teacher"]["response"]) == TEACHER_ARGS
            assert record["agreement"]["kind"] == "json"
            assert record["request"]["features"]["response_format"] == SCHEMA
    # the student got the tools and the schema in the Ollama API's own form
    bodies = [b for p, b in student.requests if p == "/api/chat"]
    assert sum(b.get("tools") == TOOLS for b in bodies) == 2
    assert sum(b.get("format") == SCHEMA["json_schema"]["schema"] for b in bodies) == 2


def test_node_openai_client_gets_the_answers_id_and_sends_feedback(
    node: str, tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    """Issue 30: the Node client reads X-ShadowTutor-Request-Id (complete and streamed) and
    posts feedback with it; the feedback joins the answers' pairs."""
    from shadowtutor.log import read, sql

    env = {"SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url, "SHADOWTUTOR_TEACHER_API_KEY": "k"}
    with collector_for(tmp_path, student, env) as c:
        running = RunningProxy(c.settings, c)
        try:
            done = subprocess.run(
                [node, str(NODE_DIR / "feedback_through_proxy.mjs")],
                env=os.environ | {"BASE_URL": f"{running.url}/v1"},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            logged = records(c, expect=2)
        finally:
            running.close()
    got = json.loads(done.stdout)
    assert got["answer"] == got["streamed"] == "echo: hello from node"
    assert sorted(got["ids"]) == sorted(r["request_id"] for r in logged)
    assert got["thumbs"]["status"] == 202 and got["thumbs"]["body"]["matched"] is True
    assert got["rating"]["status"] == 202
    assert got["again"] == {"status": 200, "body": got["thumbs"]["body"] | {"status": "duplicate"}}
    con = sql.connect(c.log_dir)
    read.create_views(con, c.log_dir)
    joined = con.execute(
        "SELECT f.kind, f.value, f.comment FROM feedback f JOIN pairs p USING (request_id) "
        "ORDER BY f.kind DESC"
    ).fetchall()
    assert joined == [("thumbs", -1.0, "from node"), ("rating", 5.0, None)]

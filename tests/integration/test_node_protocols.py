"""The official Node ``@anthropic-ai/sdk`` and ``openai`` clients (tests/node, installed by
``make node-deps``) through the proxy (issue 29): Claude's Messages API, plain and streamed
with the SDK's stream helper, the Responses API, and an embeddings call forwarded unchanged
(the same result as straight to the teacher); the records name their protocols."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shadowtutor.config import Settings
from shadowtutor.testing.modelserver import ModelServer
from tests.support.shadow import RunningProxy as Running

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
TEACHER = {"models": ["claude-haiku-4-5", "gpt-4o-mini", "text-embedding-3-small"]}
STUDENT = {"models": ["llama3"], "answer": "I am fine thank you"}

pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("Node is not installed (the Node client tests need it)")
    sdk = NODE_DIR / "node_modules" / "@anthropic-ai" / "sdk" / "package.json"
    if not sdk.is_file():
        pytest.fail("the Node Anthropic client is not installed: run `make node-deps` (CI does)")
    return found


@pytest.fixture
def running(tmp_path: Path, teacher: ModelServer, student: ModelServer) -> Iterator[Running]:
    settings = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
            "SHADOWTUTOR_ANTHROPIC_BASE_URL": teacher.url,
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_STUDENT_TIMEOUT_S": "2",
        }
    )
    run = Running(settings)
    yield run
    run.close()


def test_the_node_sdks_through_the_proxy(node: str, running: Running, teacher: ModelServer) -> None:
    done = subprocess.run(
        [node, str(NODE_DIR / "protocols_through_proxy.mjs")],
        env=os.environ | {"PROXY": running.url, "TEACHER": teacher.openai_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "message": "echo: hello from node",
        "streamed": "echo: hello from node",
        "final": "end_turn",
        "response": "echo: hi node",
        "embeddings_same": True,
    }
    recs = running.records(expect=3)
    assert sorted(r["protocol"] for r in recs) == [
        "anthropic.messages",
        "anthropic.messages",
        "openai.responses",
    ]
    assert running.collector.stats()["forwarded_by_path"] == {"/v1/embeddings": 1}

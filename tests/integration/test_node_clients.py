"""The Node SDKs (``@anthropic-ai/sdk`` and ``openai``) through the proxy: Claude's Messages
API (plain and streamed), the Responses API and a forwarded embeddings call.

Nothing is downloaded here: the test runs when ``SHADOWTUTOR_NODE_MODULES`` names a folder
whose ``node_modules`` holds both SDKs (``npm install @anthropic-ai/sdk openai`` in a scratch
folder) and ``node`` is on the PATH; otherwise it is skipped, saying so."""

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

TEACHER = {"models": ["claude-haiku-4-5", "gpt-4o-mini", "text-embedding-3-small"]}
STUDENT = {"models": ["llama3"], "answer": "I am fine thank you"}
FOLDER = Path(os.environ.get("SHADOWTUTOR_NODE_MODULES", "/nonexistent")) / "node_modules"

pytestmark = [
    pytest.mark.usefixtures("home"),
    pytest.mark.skipif(
        shutil.which("node") is None or not (FOLDER / "@anthropic-ai" / "sdk").is_dir(),
        reason="set SHADOWTUTOR_NODE_MODULES to a folder with `npm install @anthropic-ai/sdk "
        "openai` done (and have node on the PATH) to run the Node SDK tests",
    ),
]

SCRIPT = r"""
const Anthropic = require("@anthropic-ai/sdk");
const OpenAI = require("openai");
const base = process.argv[2];
const teacher = process.argv[3];
(async () => {
  const claude = new Anthropic({ baseURL: base, apiKey: "sk-ant-node", maxRetries: 0 });
  const msgs = [{ role: "user", content: "hello from node" }];
  const message = await claude.messages.create({
    model: "claude-haiku-4-5", max_tokens: 64, system: "Be brief.", messages: msgs,
  });
  const stream = claude.messages.stream({
    model: "claude-haiku-4-5", max_tokens: 64, messages: msgs,
  });
  let streamed = "";
  stream.on("text", (t) => { streamed += t; });
  const final = await stream.finalMessage();
  const openai = new OpenAI({ baseURL: base + "/v1", apiKey: "sk-node", maxRetries: 0 });
  const response = await openai.responses.create({ model: "gpt-4o-mini", input: "hi node" });
  const embed = { model: "text-embedding-3-small", input: "x y" };
  const embedded = await openai.embeddings.create(embed);
  const direct = new OpenAI({ baseURL: teacher, apiKey: "sk-node", maxRetries: 0 });
  const same = JSON.stringify(embedded) === JSON.stringify(await direct.embeddings.create(embed));
  console.log(JSON.stringify({
    message: message.content[0].text, streamed, final: final.stop_reason,
    response: response.output_text, embeddings_same: same,
  }));
})().catch((e) => { console.error(e); process.exit(1); });
"""


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


def test_the_node_sdks_through_the_proxy(
    running: Running, teacher: ModelServer, tmp_path: Path
) -> None:
    script = tmp_path / "clients.cjs"
    script.write_text(SCRIPT)
    env = {"PATH": os.environ["PATH"], "NODE_PATH": str(FOLDER)}
    done = subprocess.run(
        ["node", str(script), running.url, teacher.openai_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got == {
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

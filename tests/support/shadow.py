"""Helpers for the request-path tests (wrapper, proxy, collector, replay): collectors built on
loopback servers, the records they logged, a running proxy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import openai

from shadowtutor.backends import Answer, Backend
from shadowtutor.collect import proxy
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.config import Settings
from shadowtutor.log import read
from shadowtutor.testing.listeners import AsgiServer
from shadowtutor.testing.modelserver import ModelServer


def collector_for(
    tmp_path: Path, student: ModelServer, env: dict[str, str] | None = None, **kw: Any
) -> ShadowCollector:
    """A collector whose student is ``student`` (0.5 s timeout, a breaker that does not open
    in a test unless ``env`` says so); ``kw`` goes to :class:`ShadowCollector`."""
    base = {
        "SHADOWTUTOR_HOME": str(tmp_path / "home"),
        "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
        "SHADOWTUTOR_STUDENT_TIMEOUT_S": "0.5",
        "SHADOWTUTOR_BREAKER_FAILURES": "50",
    }
    return ShadowCollector(Settings.load(base | (env or {})), **kw)


def openai_client(server: ModelServer, key: str = "sk-test") -> openai.OpenAI:
    """The real openai client on a loopback server, without retries."""
    return openai.OpenAI(base_url=server.openai_url, api_key=key, max_retries=0)


def records(c: ShadowCollector, expect: int = 0) -> list[dict[str, Any]]:
    """What ``c`` logged, oldest first, after waiting for ``expect`` hand-offs (a streamed
    answer is handed over a moment after the client read its last event) and a flush."""
    deadline = time.monotonic() + 30  # a loaded 2-core host: the hand-off can take seconds
    while c.stats()["enqueued"] < expect and time.monotonic() < deadline:
        time.sleep(0.01)
    assert c.flush(10)
    return sorted(read.iter_records(c.log_dir), key=lambda r: r["ts"])


class RunningProxy:
    """The proxy app on a loopback port (uvicorn), in front of ``settings``' teacher."""

    def __init__(self, settings: Settings, collector: ShadowCollector | None = None):
        self.collector = collector or ShadowCollector(settings)
        self.server = AsgiServer(proxy.create_app(settings, self.collector))
        self.url = self.server.url

    def client(self, key: str = "sk-caller", **kw: Any) -> Any:
        cls = kw.pop("cls", openai.OpenAI)
        return cls(base_url=f"{self.url}/v1", api_key=key, max_retries=0, **kw)

    def records(self, expect: int = 0) -> list[dict[str, Any]]:
        return records(self.collector, expect)

    def close(self) -> None:
        self.server.close()


class FakeStudent(Backend):
    """A student without a server: answers ``text`` (or raises ``fails``), counting calls."""

    provider = "ollama"

    def __init__(self, text: str = "student answer", fails: BaseException | None = None):
        super().__init__(base_url="fake://student", model="llama3", timeout=1.0)
        self.text = text
        self.fails = fails
        self.calls: list[dict[str, Any]] = []

    def chat(self, messages: Any, **options: Any) -> Answer:  # type: ignore[override]
        self.calls.append({"messages": messages, **options})
        if self.fails is not None:
            raise self.fails
        return Answer(
            model="llama3", provider="ollama", text=self.text, latency_ms=5.0, ttft_ms=1.0,
            prompt_tokens=3, completion_tokens=2,
        )  # fmt: skip


def offline_collector(tmp_path: Path, student: Backend | None = None, **kw: Any) -> ShadowCollector:
    """A collector on a fake student (no server), logging under ``tmp_path``."""
    settings = Settings.load({"SHADOWTUTOR_HOME": str(tmp_path / "home")} | kw.pop("env", {}))
    return ShadowCollector(settings, student=student or FakeStudent(), **kw)

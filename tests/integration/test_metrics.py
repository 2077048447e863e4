"""Prometheus metrics: the proxy's GET /metrics is scraped before and after traffic, and the
counters move; the wrapper's way (start_http_server) serves the same."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shadowtutor.collect import metrics, proxy
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.config import Settings
from shadowtutor.testing.listeners import AsgiServer
from shadowtutor.testing.modelserver import ModelServer

MSGS = [{"role": "user", "content": "hello, how are you today"}]


@pytest.fixture(autouse=True)
def _home(home: Path) -> Path:
    return home


@pytest.fixture
def servers() -> Iterator[tuple[ModelServer, ModelServer]]:
    with (
        ModelServer(models=["gpt-4o-mini"]) as teacher,
        ModelServer(models=["llama3"], answer="fine thanks") as student,
    ):
        yield teacher, student


def settings_for(tmp_path: Path, teacher: ModelServer, student: ModelServer, **extra: str):  # noqa: ANN201
    return Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path / "home"),
            "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
            "SHADOWTUTOR_TEACHER_API_KEY": "sk-configured",
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_STUDENT_TIMEOUT_S": "0.5",
        }
        | extra
    )


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    resp = httpx.get(url)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_proxy_metrics_counters_move(
    tmp_path: Path, servers: tuple[ModelServer, ModelServer]
) -> None:
    teacher, student = servers
    settings = settings_for(tmp_path, teacher, student)
    collector = ShadowCollector(settings)
    server = AsgiServer(proxy.create_app(settings, collector))
    try:
        before = scrape(f"{server.url}/metrics")
        assert before[("shadowtutor_requests_total", (("decision", "shadowed"),))] == 0
        assert before[("shadowtutor_breaker_state", (("state", "closed"),))] == 1
        assert before[("shadowtutor_log_upload_lag_seconds", ())] == 0
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0)
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        deadline = time.monotonic() + 5
        while collector.stats()["enqueued"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert collector.flush(10)
        after = scrape(f"{server.url}/metrics")
    finally:
        server.close()
    assert after[("shadowtutor_requests_total", (("decision", "shadowed"),))] == 3
    assert after[("shadowtutor_records_logged_total", ())] == 3
    assert after[("shadowtutor_student_outcomes_total", (("outcome", "ok"),))] == 3
    assert after[("shadowtutor_teacher_latency_seconds_count", ())] == 3
    assert after[("shadowtutor_student_latency_seconds_count", ())] == 3
    assert after[("shadowtutor_student_latency_seconds_sum", ())] > 0
    assert after[("shadowtutor_log_write_errors_total", ())] == 0
    assert ("shadowtutor_queue_depth", ()) in after and (
        "shadowtutor_records_lost_total",
        (),
    ) in after


def test_student_down_shows_in_outcomes_and_breaker(
    tmp_path: Path, servers: tuple[ModelServer, ModelServer]
) -> None:
    teacher, student = servers
    settings = settings_for(
        tmp_path,
        teacher,
        student,
        SHADOWTUTOR_STUDENT_BASE_URL="http://127.0.0.1:9",
        SHADOWTUTOR_BREAKER_FAILURES="2",
        # One worker: two workers may both ask the student before the second failure opens
        # the breaker (3 errors, as a closed breaker should allow), on a busy machine.
        SHADOWTUTOR_WORKERS="1",
    )
    collector = ShadowCollector(settings)
    server = AsgiServer(proxy.create_app(settings, collector))
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0)
        for _ in range(4):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        deadline = time.monotonic() + 5
        while collector.stats()["enqueued"] < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert collector.flush(10)
        got = scrape(f"{server.url}/metrics")
    finally:
        server.close()
    assert got[("shadowtutor_student_outcomes_total", (("outcome", "error"),))] == 2
    assert got[("shadowtutor_student_outcomes_total", (("outcome", "breaker_skipped"),))] == 2
    assert got[("shadowtutor_breaker_state", (("state", "open"),))] == 1
    assert got[("shadowtutor_breaker_opened_total", ())] == 1
    assert got[("shadowtutor_student_latency_seconds_count", ())] == 0  # only answers given


def test_wrapper_apps_serve_the_same_metrics(
    tmp_path: Path, servers: tuple[ModelServer, ModelServer]
) -> None:
    import socket

    teacher, student = servers
    collector = ShadowCollector(settings_for(tmp_path, teacher, student))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    http_server, thread = metrics.start_http_server(collector, port)
    try:
        client = collector.wrap(openai.OpenAI(base_url=teacher.openai_url, api_key="k"))
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        assert collector.flush(10)
        got = scrape(f"http://127.0.0.1:{port}/metrics")
        assert got[("shadowtutor_records_logged_total", ())] == 1
        assert metrics.for_collector(collector) is metrics.for_collector(collector)
    finally:
        http_server.shutdown()
        collector.close()

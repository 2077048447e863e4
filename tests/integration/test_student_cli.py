"""`shadowtutor students health` and `students info MODEL` against loopback Ollama and
OpenAI-compatible servers: the same facts as the Playground page, a clear line for each fault."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from shadowtutor.cli import main
from shadowtutor.config import Settings
from shadowtutor.testing.modelserver import ModelServer
from tests.support.apputil import app_as, switch


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def rows(output: str) -> list[tuple[str, str]]:
    pairs = [line.split(":", 1) for line in output.splitlines() if line and ":" in line]
    return [(label, value.strip()) for label, value in pairs if not label.startswith("problem")]


@pytest.fixture
def ollama(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    with ModelServer(models=["llama3:latest", "qwen2:1.5b"], version="0.6.5") as server:
        monkeypatch.setenv("SHADOWTUTOR_STUDENT_BASE_URL", server.url)
        yield server


def test_health_prints_server_and_model_facts(ollama: ModelServer) -> None:
    result = run("students", "health")
    assert result.exit_code == 0, result.output
    facts = dict(rows(result.stdout))
    assert facts["Student server"] == f"ollama at {ollama.url}"
    assert facts["Reachable"] == "yes" and facts["Version"] == "0.6.5"
    assert facts["Models pulled"] == "llama3:latest, qwen2:1.5b"
    assert facts["Models loaded"] == "llama3:latest" and facts["Chosen model"] == "llama3"
    assert (facts["Family"], facts["Parameters"], facts["Quantization"]) == (
        "llama",
        "8.0B",
        "Q4_0",
    )
    assert facts["Context length"] == "8,192 tokens" and facts["Loaded now"] == "yes"


def test_health_is_the_same_as_the_page(migrated: Settings, ollama: ModelServer) -> None:
    cli = rows(run("students", "health").stdout)
    at = switch(app_as(migrated.db_url, "admin").run(), "pages/playground.py")
    table = at.dataframe[0].value
    assert cli == list(zip(table.iloc[:, 0], table.iloc[:, 1], strict=True))


def test_info_prints_model_facts(ollama: ModelServer) -> None:
    result = run("students", "info", "qwen2:1.5b")
    assert result.exit_code == 0, result.output
    assert rows(result.stdout) == [
        ("Model", "qwen2:1.5b"),
        ("Family", "qwen"),
        ("Parameters", "8.0B"),
        ("Quantization", "Q4_0"),
        ("Context length", "8,192 tokens"),
        ("Size", "4.7 GB"),
        ("Loaded now", "no"),
    ]
    assert ollama.count("/api/show") == 1


@pytest.mark.parametrize(
    ("args", "fault", "expected"),
    [
        (["health"], "down", "start it with `ollama serve`"),
        (["info", "llama3"], "down", "start it with `ollama serve`"),
        (["health", "--model", "phi3"], None, "run: ollama pull phi3"),
        (["info", "phi3"], None, "run: ollama pull phi3"),
    ],
)
def test_faults_are_one_line_with_the_fix(ollama: ModelServer, args, fault, expected) -> None:  # noqa: ANN001
    if fault == "down":
        ollama.down()
    result = run("students", *args)
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output


def test_openai_compatible_student(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ModelServer(models=["Qwen/Qwen2.5-7B-Instruct"]) as server:
        monkeypatch.setenv("SHADOWTUTOR_STUDENT_BACKEND", "openai")
        monkeypatch.setenv("SHADOWTUTOR_STUDENT_BASE_URL", server.openai_url)
        monkeypatch.setenv("SHADOWTUTOR_STUDENT_MODEL", "Qwen/Qwen2.5-7B-Instruct")
        result = run("students", "health")
        assert result.exit_code == 0, result.output
        facts = dict(rows(result.stdout))
        assert facts["Student server"] == f"openai-compatible at {server.openai_url}"
        assert facts["Version"] == "not reported" and facts["Models loaded"] == "not reported"
        assert facts["Family"] == "not reported"
        info = run("students", "info", "missing-model")
        assert info.exit_code == 1 and "does not serve model 'missing-model'" in info.output
        server.down()
        down = run("students", "health")
        assert down.exit_code == 1 and "nothing is listening at" in down.output


def test_the_old_student_group_still_works_and_says_where_it_moved(ollama: ModelServer) -> None:
    old = run("student", "health")
    assert old.exit_code == 0, old.output
    assert "`shadowtutor student` is now `shadowtutor students`" in old.stderr
    assert old.stdout == run("students", "health").stdout
    info = run("student", "info", "qwen2:1.5b")
    assert info.exit_code == 0 and "is now `shadowtutor students`" in info.stderr
    listed = [
        line.split()[0]
        for line in run("--help").stdout.split("Commands:")[1].splitlines()
        if line.strip()
    ]
    assert "students" in listed and "student" not in listed  # hidden

"""`shadowtutor replay FILE`: our schema or OpenAI JSONL; resumable; teacher only if needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shadowtutor.cli import main
from shadowtutor.collect import replay
from shadowtutor.config import Settings
from shadowtutor.log import ingest, read, schema
from shadowtutor.log.errors import RecordError
from shadowtutor.testing.modelserver import ModelServer

TEACHER = {"models": ["gpt-4o-mini"], "answer": "the teacher's fresh answer"}


@pytest.fixture
def env(home: Path, teacher: ModelServer, student: ModelServer, monkeypatch) -> dict[str, str]:
    values = {
        "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
        "SHADOWTUTOR_TEACHER_API_KEY": "sk-test",
        "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
        "SHADOWTUTOR_STUDENT_TIMEOUT_S": "1",
        "SHADOWTUTOR_BREAKER_FAILURES": "3",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def write_lines(path: Path, objs: list[Any]) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return path


def our_record(i: int) -> dict[str, Any]:
    return schema.make_record(
        id=f"rec-{i}",
        ts=schema.parse_ts("2026-10-01T10:00:00Z"),
        source="live",
        messages=[{"role": "user", "content": f"question number {i}"}],
        teacher={
            "model": "gpt-4o-mini",
            "response": f"old answer {i}",
            "prompt_tokens": 5,
            "completion_tokens": 3,
        },
        user_hash="abc",
        category="business",
    )


def mixed_file(tmp_path: Path) -> Path:
    return write_lines(
        tmp_path / "in.jsonl",
        [
            our_record(1),
            our_record(2),
            {
                "messages": [
                    {"role": "user", "content": "ciao"},
                    {"role": "assistant", "content": "ciao!"},
                ]
            },
            {"messages": [{"role": "user", "content": "prompt only, no answer"}]},
            "{broken json",
            our_record(1),  # a duplicate line
        ],
    )


def logged(settings: Settings) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in read.iter_records(settings.log_path)}


def test_replay_mixed_file_calls_the_teacher_only_where_needed(
    env: dict[str, str], tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    result = CliRunner().invoke(main, ["replay", str(mixed_file(tmp_path)), "--concurrency", "2"])
    assert result.exit_code == 1, result.output  # one bad line is reported
    assert "in.jsonl:5: not valid JSON" in result.output
    assert "replayed 4, already in the log 0, teacher called 1" in result.output
    recs = logged(Settings.load())
    assert len(recs) == 4 and all(r["source"] == "replay" for r in recs.values())
    assert recs["rec-1"]["teacher"]["response"] == "old answer 1"
    assert recs["rec-1"]["ts"].startswith("2026-10-01") and recs["rec-1"]["category"] == "business"
    assert recs["rec-1"]["student"]["response"] == "echo: question number 1"
    fresh = [r for r in recs.values() if r["metadata"].get("teacher_called")]
    assert [r["teacher"]["response"] for r in fresh] == ["the teacher's fresh answer"]
    assert teacher.count("/v1/chat/completions") == 1
    assert student.count("/api/chat") == 4


def test_replay_is_resumable(env: dict[str, str], tmp_path: Path, student: ModelServer) -> None:
    path = mixed_file(tmp_path)
    settings = Settings.load()
    items, _, _ = replay.read_items(path)
    # A first run that was interrupted after two lines: those are in the log already.
    first = [i for i in items if i.id in ("rec-1", "rec-2")]
    write_lines(
        tmp_path / "part.jsonl",
        [json.loads(schema.dumps(our_record(1))), json.loads(schema.dumps(our_record(2)))],
    )
    ingest.import_file(tmp_path / "part.jsonl", settings.log_path)
    assert len(first) == 2
    report = replay.replay(path, settings, concurrency=3)
    assert (report.replayed, report.already_logged) == (2, 2)
    assert student.count("/api/chat") == 2
    again = replay.replay(path, settings)
    assert (again.replayed, again.already_logged) == (0, 4)


def test_student_down_stops_with_a_resume_message(
    env: dict[str, str], tmp_path: Path, student: ModelServer
) -> None:
    student.down()
    lines = [our_record(i) for i in range(20)]
    path = write_lines(tmp_path / "many.jsonl", lines)
    result = CliRunner().invoke(main, ["replay", str(path), "--concurrency", "1"])
    assert result.exit_code == 1
    assert "stopped: the student failed 3 times in a row" in result.output
    assert "run the same command again to resume" in result.output
    settings = Settings.load()
    written = logged(settings)
    assert 3 <= len(written) < 20  # the failures are recorded, the untried lines are not
    assert all(r["student"]["error"].startswith("unavailable") for r in written.values())
    student.up()
    resumed = replay.replay(path, settings)
    assert resumed.replayed == 20 - len(written)


def test_student_timeouts_are_recorded(
    env: dict[str, str], tmp_path: Path, student: ModelServer
) -> None:
    student.delay = 1.5
    path = write_lines(tmp_path / "one.jsonl", [our_record(1)])
    report = replay.replay(path, Settings.load())
    assert report.replayed == 1 and report.student_timeouts == 1
    assert logged(Settings.load())["rec-1"]["student"]["error"].startswith("timeout")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"messages": []}', "there is no prompt"),
        ('{"messages": "hi"}', "must be a list"),
        ("[1, 2]", "JSON object"),
        (
            '{"id": "x", "ts": "2026-01-01", "teacher": {}, '
            '"messages": [{"role": "user", "content": "q"}]}',
            "teacher.model",
        ),
    ],
)
def test_parse_item_rejects_with_a_reason(line: str, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        replay.parse_item(line)


def test_prompt_only_lines_get_a_stable_id() -> None:
    line = '{"messages": [{"role": "user", "content": "hello"}], "model": "gpt-4o"}'
    a, b = replay.parse_item(line), replay.parse_item(line)
    assert a.id == b.id and a.id.startswith("oai-") and a.teacher is None
    assert a.record == {"teacher": {"model": "gpt-4o"}}


def test_cli_lists_the_commands_and_rejects_a_bad_backend(home: Path, monkeypatch) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["--help"]).output
    assert "proxy" in out and "replay" in out
    monkeypatch.setenv("SHADOWTUTOR_STUDENT_BACKEND", "vllm")
    result = runner.invoke(main, ["proxy", "--port", "1"])
    assert result.exit_code == 1
    assert "SHADOWTUTOR_STUDENT_BACKEND='vllm' is not a backend" in result.output
    assert "Traceback" not in result.output


def test_replay_missing_file_is_a_usage_error(home: Path) -> None:
    result = CliRunner().invoke(main, ["replay", "/nonexistent.jsonl"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_teacher_model_names_an_openai_export_so_it_is_priced(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "export.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": "ciao, come stai?"},
                    {"role": "assistant", "content": "bene, grazie!"},
                ]
            },
            our_record(7),  # names gpt-4o-mini itself: kept
        ],
    )
    result = CliRunner().invoke(main, ["replay", str(path), "--teacher-model", "gpt-4o"])
    assert result.exit_code == 0, result.output
    recs = logged(Settings.load())
    exported = next(r for r in recs.values() if r["id"] != "rec-7")
    assert exported["teacher"]["model"] == "gpt-4o"
    assert exported["teacher"]["cost_usd"] and exported["teacher"]["cost_usd"] > 0
    assert "cost_unknown" not in exported["metadata"]
    assert recs["rec-7"]["teacher"]["model"] == "gpt-4o-mini"


def test_without_teacher_model_an_openai_export_is_unknown_and_unpriced(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "export.jsonl",
        [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]}],
    )
    assert CliRunner().invoke(main, ["replay", str(path)]).exit_code == 0
    (rec,) = logged(Settings.load()).values()
    assert rec["teacher"]["model"] == "unknown" and rec["teacher"].get("cost_usd") is None


# --- issue 12 item 6: teacher failures, max_tokens, Ctrl-C ---------------------------------


def prompts(tmp_path: Path, n: int, name: str = "prompts.jsonl") -> Path:
    return write_lines(
        tmp_path / name,
        [{"messages": [{"role": "user", "content": f"prompt number {i}"}]} for i in range(n)],
    )


@pytest.mark.parametrize("fault", ["no_finish_reason", "status_500"])
def test_teacher_failures_are_counted_not_written_and_retried(
    env: dict[str, str], tmp_path: Path, teacher: ModelServer, student: ModelServer, fault: str
) -> None:
    """5 of 6 teacher calls failed ("ended the stream without a finish reason"), yet replay
    printed "student errors 0", exit 0, wrote null answers and a re-run skipped them."""
    path = prompts(tmp_path, 6)
    if fault == "no_finish_reason":
        teacher.stop_after = 1
    else:
        teacher.status = 500
    result = CliRunner().invoke(main, ["replay", str(path), "--concurrency", "2"])
    assert result.exit_code == 1, result.output
    assert "replayed 0, already in the log 0, teacher called 6, teacher errors 6" in result.output
    assert "run the same command again to retry them" in result.output
    if fault == "no_finish_reason":
        assert "ended the stream without a finish reason" in result.output
    assert logged(Settings.load()) == {}  # nothing written as if complete
    assert student.count("/api/chat") == 0  # no student call for a pair that cannot be made
    teacher.reset()
    again = CliRunner().invoke(main, ["replay", str(path)])
    assert again.exit_code == 0, again.output
    assert "replayed 6, already in the log 0, teacher called 6, teacher errors 0" in again.output
    recs = logged(Settings.load())
    assert len(recs) == 6
    assert all(r["teacher"]["response"] == "the teacher's fresh answer" for r in recs.values())
    assert all(r["teacher"].get("error") is None for r in recs.values())


def test_a_teacher_timeout_is_a_teacher_error(
    env: dict[str, str], tmp_path: Path, teacher: ModelServer
) -> None:
    from shadowtutor.backends import teacher_backend

    settings = Settings.load()
    teacher.delay = 2.0
    report = replay.replay(
        prompts(tmp_path, 2), settings, teacher=teacher_backend(settings, timeout=0.3)
    )
    assert (report.teacher_errors, report.replayed) == (2, 0)
    assert all("time" in reason.lower() for _, reason in report.teacher_failures)
    assert logged(settings) == {}


def test_max_tokens_bounds_the_teacher_and_the_student(
    env: dict[str, str], tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    path = write_lines(
        tmp_path / "two.jsonl",
        [{"messages": [{"role": "user", "content": "fresh prompt"}]}, our_record(3)],
    )
    assert CliRunner().invoke(main, ["replay", str(path)]).exit_code == 0
    [t_body] = [b for p, b in teacher.requests if p == "/v1/chat/completions"]
    assert t_body["max_tokens"] == replay.DEFAULT_MAX_TOKENS == 1024  # a sane default
    s_bodies = [b for p, b in student.requests if p == "/api/chat"]
    assert [b["options"]["num_predict"] for b in s_bodies] == [1024, 1024]
    teacher.reset(), student.reset()
    path2 = prompts(tmp_path, 1, "other.jsonl")
    assert CliRunner().invoke(main, ["replay", str(path2), "--max-tokens", "64"]).exit_code == 0
    [t_body] = [b for p, b in teacher.requests if p == "/v1/chat/completions"]
    [s_body] = [b for p, b in student.requests if p == "/api/chat"]
    assert t_body["max_tokens"] == 64 and s_body["options"]["num_predict"] == 64
    bad = CliRunner().invoke(main, ["replay", str(path2), "--max-tokens", "0"])
    assert bad.exit_code == 2 and "--max-tokens" in bad.output


def test_ctrl_c_stops_at_once_writes_what_is_done_and_says_how_to_resume(
    env: dict[str, str], tmp_path: Path, teacher: ModelServer, student: ModelServer
) -> None:
    """A real `shadowtutor replay` process, a slow teacher, SIGINT: it stopped after 1 min
    44 s, kept writing and said only "Aborted!". Now it exits within a second or two, the
    finished pairs are in the log (complete), the rest is not, and the same command resumes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    teacher.delay = 1.0  # 40 lines, 2 at once: 20 s to finish
    path = prompts(tmp_path, 40)
    cmd = [sys.executable, "-m", "shadowtutor.cli", "replay", str(path), "--concurrency", "2"]

    def as_from_a_terminal() -> None:
        # A test runner started in the background (CI, nohup, `cmd &` in a script) has
        # SIGINT ignored, and a child inherits that: Python then installs no Ctrl-C handler.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen(
        cmd,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_from_a_terminal,
    )
    try:
        deadline = time.monotonic() + 60
        while teacher.count("/v1/chat/completions") < 5 and time.monotonic() < deadline:
            time.sleep(0.05)  # a few lines done, two more with the teacher
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert took < 10, f"took {took:.1f} s to stop"  # generous: 1-2 s, and 20 s left to run
    assert "Aborted!" not in err and "Traceback" not in err
    assert "interrupted:" in err and "Run the same command again to resume" in err
    settings = Settings.load()
    done = logged(settings)
    assert 1 <= len(done) < 40
    assert all(r["teacher"]["response"] and r["student"]["response"] for r in done.values())
    assert f"replayed {len(done)}," in out
    asked = teacher.count("/v1/chat/completions")
    time.sleep(1.5)  # answers that were on their way when it stopped
    assert teacher.count("/v1/chat/completions") == asked  # nothing asked after the stop
    teacher.delay = 0
    resumed = replay.replay(path, settings)
    assert (resumed.replayed, resumed.already_logged) == (40 - len(done), len(done))
    assert len(logged(settings)) == 40


def test_replay_asks_the_registered_students_not_the_default(
    env: dict[str, str], tmp_path: Path, student: ModelServer
) -> None:
    """Issue 27 item 13: `shadowtutor replay` always used the settings' `default` student,
    never the registered ones."""
    from shadowtutor import db, students
    from shadowtutor.accounts.permissions import SYSTEM

    settings = Settings.load()
    db.upgrade(settings.db_url)
    with (
        ModelServer(models=["qwen2.5:7b"], answer="qwen says") as qwen,
        ModelServer(models=["mistral:7b"], answer="mistral says") as mistral,
    ):
        with db.session_scope(settings.db_url) as session:
            for name, server, model in (("qwen", qwen, "qwen2.5:7b"),
                                        ("mistral", mistral, "mistral:7b")):  # fmt: skip
                students.add(session=session, actor_id=SYSTEM, name=name, backend="ollama",
                             base_url=server.url, model=model)  # fmt: skip
        path = write_lines(tmp_path / "in.jsonl", [our_record(1), our_record(2)])
        result = CliRunner().invoke(main, ["replay", str(path)])
        assert result.exit_code == 0, result.output
        assert "students (registered, each asked): qwen, mistral" in result.output
        assert "replayed 2," in result.output
        assert student.count("/api/chat") == 0  # the settings' student is not asked
        recs = list(read.iter_records(settings.log_path))
        again = CliRunner().invoke(main, ["replay", str(path)])  # resumable: nothing twice
    by_student = sorted(
        (r["request_id"], r["student_name"], r["student"]["response"]) for r in recs
    )
    assert by_student == [
        ("rec-1", "mistral", "mistral says"), ("rec-1", "qwen", "qwen says"),
        ("rec-2", "mistral", "mistral says"), ("rec-2", "qwen", "qwen says"),
    ]  # fmt: skip
    assert sum(schema.is_primary(r) for r in recs) == 2
    assert "already in the log 2" in again.output
    assert len(list(read.iter_records(settings.log_path))) == 4

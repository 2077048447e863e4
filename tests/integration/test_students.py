"""Students as data: registration, listing, retiring, the default student, and the CLI, on
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlmodel import Session

from shadowtutor import db, students
from shadowtutor.accounts.permissions import SYSTEM
from shadowtutor.cli import main
from shadowtutor.config import Settings
from shadowtutor.gate import rollout
from shadowtutor.students import StudentError
from shadowtutor.tables import RolloutEvent


def _add(session: Session, name: str, **kw):
    kw.setdefault("backend", "ollama")
    kw.setdefault("model", "llama3.1:8b")
    return students.add(session=session, actor_id=SYSTEM, name=name, **kw)


def test_registered_students_replace_the_default(session: Session, settings: Settings) -> None:
    assert [s.name for s in students.active_specs(settings, session=session)] == ["default"]
    assert students.active_specs(settings, session=session)[0].model == settings.student_model
    _add(session, "llama", base_url="http://gpu:11434", timeout_s=3.0)
    _add(session, "qwen", backend="openai", model="qwen2.5-7b", share_percent=25)
    specs = students.active_specs(settings, session=session)
    assert [(s.name, s.backend, s.share_percent) for s in specs] == [
        ("llama", "ollama", 100.0),
        ("qwen", "openai", 25.0),
    ]
    assert specs[0].timeout_s == 3.0 and specs[1].timeout_s == settings.student_timeout_s


def test_retire_stops_shadowing_but_keeps_the_row(session: Session, settings: Settings) -> None:
    _add(session, "llama")
    _add(session, "qwen")
    students.retire(session=session, actor_id=SYSTEM, name="llama")
    assert [s.name for s in students.active_specs(settings, session=session)] == ["qwen"]
    every = students.list_students(session=session, include_retired=True)
    assert [(r.name, r.retired_at is not None) for r in every] == [("llama", True), ("qwen", False)]
    with pytest.raises(StudentError, match="retired already"):
        students.retire(session=session, actor_id=SYSTEM, name="llama")
    with pytest.raises(StudentError, match="exists already"):
        _add(session, "llama")  # a retired name keeps its meaning in the log


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"name": "default"}, "single-student settings"),
        ({"name": "bad name"}, "must be 1-64 letters"),
        ({"name": "x", "backend": "vllm"}, "is not one of"),
        ({"name": "x", "model": ""}, "needs a model"),
        ({"name": "x", "share_percent": 0}, "sampling share"),
        ({"name": "x", "timeout_s": -1}, "timeout must be positive"),
    ],
)
def test_invalid_registrations_say_what_to_fix(session: Session, kw: dict, message: str) -> None:
    kw = dict(kw)
    name = kw.pop("name")
    with pytest.raises(StudentError, match=message):
        _add(session, name, **kw)


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_add_list_retire(migrated: Settings) -> None:
    out = _run("students", "list")
    assert out.exit_code == 0 and "default" in out.output and "(settings)" in out.output
    out = _run(
        "students", "add", "qwen-v2", "--model", "qwen2.5:7b-ft", "--share", "50",
        "--version", "v2",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "added student qwen-v2 (ollama qwen2.5:7b-ft, 50%)" in out.output
    out = _run("students", "list")
    assert "qwen-v2" in out.output and "active" in out.output and "default" not in out.output
    assert _run("students", "retire", "qwen-v2").exit_code == 0
    assert "qwen-v2" not in _run("students", "list").output
    assert "retired" in _run("students", "list", "--all").output
    bad = CliRunner().invoke(main, ["students", "add", "x", "--model", "m", "--trained-on", "nope"])
    assert bad.exit_code != 0 and "no export 'nope'" in bad.output


def test_trained_on_an_export_links_its_dataset_version(migrated: Settings) -> None:
    from shadowtutor import db
    from shadowtutor.export.jobs import dataset_version
    from shadowtutor.tables import ExportJob

    version = dataset_version({"sft_train.jsonl": b'{"messages": []}\n'})
    assert version == dataset_version({"sft_train.jsonl": b'{"messages": []}\n'})
    assert version != dataset_version({"sft_train.jsonl": b"other\n"})
    with db.session_scope(migrated.db_url) as s:
        s.add(ExportJob(path="/x/20261201-120000", manifest={
            "export_id": "20261201-120000", "dataset_version": version}))  # fmt: skip
    out = _run("students", "add", "ft", "--model", "ft:v2", "--trained-on", "20261201-120000")
    assert out.exit_code == 0, out.output
    assert f"trained-on {version}" in _run("students", "list").output


def _serve(session: Session, name: str, stage: int = 10) -> None:
    """The rollout at ``stage`` % with ``name`` serving (as an advance after a GO leaves it)."""
    session.add(
        RolloutEvent(action="advance", stage=stage, killed=False, reason="GO #1",
                     details={"categories": ["greeting"], "student": name})
    )  # fmt: skip
    session.flush()


def test_retiring_the_serving_student_is_refused(session: Session) -> None:
    """Issue 27 item 3: one click retired the student serving 10 % of live traffic, and the
    rollout still named it."""
    _add(session, "llama")
    _add(session, "qwen")
    _serve(session, "llama")
    with pytest.raises(StudentError, match=r"llama serves 10% of eligible traffic"):
        students.retire(session=session, actor_id=SYSTEM, name="llama")
    assert students.get(session=session, name="llama").retired_at is None
    students.retire(session=session, actor_id=SYSTEM, name="qwen")  # not serving: retired


def test_retiring_the_serving_student_with_a_reason_rolls_back_first(session: Session) -> None:
    _add(session, "llama")
    _serve(session, "llama", stage=25)
    result = students.retire(
        session=session, actor_id=SYSTEM, name="llama", rollback_reason="its server is gone"
    )
    assert result.rolled_back_from == 25
    assert "rolled back from 25% to the teacher" in result.describe()
    now = rollout.state(session=session)
    assert now.stage == 0
    (event, *_) = rollout.history(session=session)
    assert event.action == "rollback"
    assert event.reason == "retiring student llama: its server is gone"
    assert students.get(session=session, name="llama").retired_at is not None


def test_re_registering_a_retired_name_says_it_is_retired(session: Session) -> None:
    _add(session, "llama")
    students.retire(session=session, actor_id=SYSTEM, name="llama")
    with pytest.raises(StudentError, match="exists already and is retired"):
        _add(session, "llama")


def test_cli_retire_of_the_serving_student_asks_for_a_rollback_reason(migrated: Settings) -> None:
    assert _run("students", "add", "llama", "--model", "llama3").exit_code == 0
    with db.session_scope(migrated.db_url) as session:
        _serve(session, "llama")
    refused = CliRunner().invoke(main, ["students", "retire", "llama"])
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "llama serves 10% of eligible traffic" in refused.output
    assert "--rollback-reason" in refused.output
    out = _run("students", "retire", "llama", "--rollback-reason", "server retired")
    assert out.exit_code == 0, out.output
    assert "rolled back from 10% to the teacher" in out.output
    with db.session_scope(migrated.db_url) as session:
        assert rollout.state(session=session).stage == 0

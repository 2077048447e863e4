"""Playground logic and student health against loopback Ollama / OpenAI servers (real clients,
streaming): figures, teacher beside with cost and similarity, saving pairs, each error."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from shadowtutor import detect
from shadowtutor.accounts.permissions import PermissionDenied
from shadowtutor.backends import ModelNotFound, OllamaBackend, answer, student_backend
from shadowtutor.config import Settings
from shadowtutor.cost import pricing
from shadowtutor.log import read
from shadowtutor.playground import chat
from shadowtutor.similarity import lexical
from shadowtutor.students import health
from shadowtutor.tables import ReviewItem, User
from shadowtutor.testing.modelserver import ModelServer

STUDENT_TEXT = "Ciao! Posso aiutarti a prenotare un tavolo per stasera."
TEACHER_TEXT = "Ciao! Certo, posso aiutarti a prenotare un tavolo per stasera alle otto."


STUDENT = {"models": ["llama3:latest", "mistral"], "answer": STUDENT_TEXT}  # conftest's servers
TEACHER = {"models": ["gpt-4o-mini"], "answer": TEACHER_TEXT}


def _settings(monkeypatch: pytest.MonkeyPatch, student: ModelServer, **extra: str) -> Settings:
    monkeypatch.setenv("SHADOWTUTOR_STUDENT_BASE_URL", student.url)
    for key, value in extra.items():
        monkeypatch.setenv(f"SHADOWTUTOR_{key.upper()}", value)
    return Settings.load()


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch, student: ModelServer, teacher: ModelServer):
    return _settings(
        monkeypatch, student, teacher_base_url=teacher.openai_url, teacher_api_key="sk-test"
    )


# --- figures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "latency", "ttft", "expected"),
    [
        (11, 1100.0, 100.0, 10.0),  # 10 tokens after the first in one second
        (1, 500.0, 500.0, 2.0),  # one token: over the whole latency
        (5, 1000.0, None, 5.0),  # no TTFT known
        (0, 1000.0, 10.0, None),
        (None, 1000.0, 10.0, None),
        (3, 0.0, 0.0, None),
        (4, 100.0, 100.0, 40.0),  # everything arrived at once: whole latency
    ],
)
def test_tokens_per_second(tokens, latency, ttft, expected) -> None:  # noqa: ANN001
    assert answer.tokens_per_second(tokens, latency, ttft) == pytest.approx(expected)


def test_student_streams_two_turns_with_figures(env: Settings, student: ModelServer) -> None:
    conversation = chat.Chat(model="llama3", system_prompt="Rispondi in italiano.", temperature=0.2)
    conversation.max_tokens = 64
    seen: list[tuple[str, str]] = []
    backend = student_backend(env)
    turn = chat.ask(
        conversation, "Ciao!", settings=env, student=backend, with_teacher=False,
        on_text=lambda who, text: seen.append((who, text)),
    )  # fmt: skip
    assert turn.student.error is None and turn.student.text == STUDENT_TEXT
    assert len(seen) == len(STUDENT_TEXT.split()) and seen[-1] == ("student", STUDENT_TEXT)
    assert seen[0][1] == "Ciao! "  # pieces arrive one word at a time, growing
    s = turn.student
    assert 0 < s.ttft_ms <= s.latency_ms and s.tokens_per_s > 0
    assert s.completion_tokens == len(STUDENT_TEXT.split()) and not s.usage_estimated
    assert s.cost_usd == 0.0  # a local Ollama student costs nothing per request
    assert turn.teacher is None and turn.similarity is None
    path, body = student.requests[-1]
    assert path == "/api/chat" and body["stream"] is True
    assert body["options"] == {"temperature": 0.2, "num_predict": 64}

    second = chat.ask(conversation, "E domani?", settings=env, student=backend, with_teacher=False)
    assert [m["role"] for m in second.messages] == ["system", "user", "assistant", "user"]
    assert second.messages[2]["content"] == STUDENT_TEXT
    assert student.requests[-1][1]["messages"] == second.messages
    assert len(conversation.turns) == 2


def test_teacher_beside_with_cost_and_similarity(env: Settings, teacher: ModelServer) -> None:
    conversation = chat.Chat(model="mistral")
    turn = chat.ask(
        conversation,
        "Vorrei prenotare",
        settings=env,
        student=student_backend(env),
        with_teacher=True,
    )
    t = turn.teacher
    assert t is not None and t.error is None and t.text == TEACHER_TEXT
    assert t.model == "gpt-4o-mini" and t.ttft_ms is not None
    # loopback usage: prompt = words + 3, completion = words; gpt-4o-mini is $0.15 / $0.60 per M
    prompt_tokens, completion_tokens = 2 + 3, len(TEACHER_TEXT.split())
    assert (t.prompt_tokens, t.completion_tokens) == (prompt_tokens, completion_tokens)
    assert t.cost_usd == pytest.approx((prompt_tokens * 0.15 + completion_tokens * 0.60) / 1e6)
    assert t.price_version == pricing.load_table().version
    assert turn.similarity_method == "lexical"
    assert turn.similarity == lexical(TEACHER_TEXT, STUDENT_TEXT)
    assert 0.3 < turn.similarity < 1
    assert teacher.requests[-1][1]["messages"] == turn.messages  # the same prompt


def test_openai_compatible_student(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ModelServer(models=["qwen2.5-7b"], answer="Hello from vLLM") as server:
        monkeypatch.setenv("SHADOWTUTOR_STUDENT_BACKEND", "openai")
        monkeypatch.setenv("SHADOWTUTOR_STUDENT_BASE_URL", server.openai_url)
        monkeypatch.setenv("SHADOWTUTOR_STUDENT_MODEL", "qwen2.5-7b")
        settings = Settings.load()
        conversation = chat.Chat(model="qwen2.5-7b")
        turn = chat.ask(
            conversation,
            "Hi",
            settings=settings,
            student=student_backend(settings),
            with_teacher=False,
        )
        assert (
            turn.student.text == "Hello from vLLM" and turn.student.provider == "openai-compatible"
        )
        report = health.check(student_backend(settings), "qwen2.5-7b")
        facts = dict(report.facts())
        assert report.ok and facts["Version"] == "not reported"
        assert facts["Models loaded"] == "not reported" and facts["Family"] == "not reported"


# --- health and info ----------------------------------------------------------------------------


def test_health_reports_server_and_model(env: Settings, student: ModelServer) -> None:
    report = health.check(student_backend(env), "llama3")
    assert report.ok and report.problems == []
    assert report.facts() == [
        ("Student server", f"ollama at {student.url}"),
        ("Reachable", "yes"),
        ("Version", "0.6.3"),
        ("Models pulled", "llama3:latest, mistral"),
        ("Models loaded", "llama3:latest"),
        ("Chosen model", "llama3"),
        ("Family", "llama"),
        ("Parameters", "8.0B"),
        ("Quantization", "Q4_0"),
        ("Context length", "8,192 tokens"),
        ("Size", "4.7 GB"),
        ("Loaded now", "yes"),
        ("Loaded context", "8,192 tokens"),
    ]


def test_health_of_a_model_not_loaded(env: Settings) -> None:
    facts = dict(health.check(student_backend(env), "mistral").facts())
    assert facts["Family"] == "mistral" and facts["Loaded now"] == "no"
    assert "Loaded context" not in facts


def test_info_matches_health_rows(env: Settings) -> None:
    rows = health.info(student_backend(env), "llama3")
    report = health.check(student_backend(env), "llama3").facts()
    assert rows[0] == ("Model", "llama3")
    assert rows[1:] == report[6:]  # the same facts as the health report's model part


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("down", "start it with `ollama serve`"),
        ("not_pulled", "run: ollama pull phi3"),
    ],
)
def test_health_problems_name_the_fix(env: Settings, student: ModelServer, fault, expected) -> None:  # noqa: ANN001
    model = "phi3" if fault == "not_pulled" else "llama3"
    if fault == "down":
        student.down()
    report = health.check(student_backend(env), model)
    assert not report.ok and expected in report.problems[0]
    facts = dict(report.facts())
    assert facts["Reachable"] == ("no" if fault == "down" else "yes")
    if fault == "not_pulled":
        assert facts["Pulled"] == "no"


def test_info_of_missing_model_names_pull(env: Settings) -> None:
    with pytest.raises(ModelNotFound, match="ollama pull phi3"):
        health.info(student_backend(env), "phi3")


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind", "expected"),
    [
        ("down", "unavailable", "start it with `ollama serve`"),
        ("not_pulled", "model_not_found", "run: ollama pull phi3"),
        ("timeout", "timeout", "did not answer in 0.3 s"),
        ("http_500", "http_error", "answered HTTP 500"),
        ("cut", "protocol_error", "broke mid-answer"),
    ],
)
def test_student_errors_are_messages(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    student: ModelServer,
    fault,
    kind,
    expected,  # noqa: ANN001
) -> None:
    settings = _settings(monkeypatch, student, student_timeout_s="0.3")
    conversation = chat.Chat(model="phi3" if fault == "not_pulled" else "llama3")
    if fault == "down":
        student.down()
    student.delay = 1.0 if fault == "timeout" else 0
    student.status = 500 if fault == "http_500" else None
    student.cut_after = 2 if fault == "cut" else None
    turn = chat.ask(
        conversation,
        "Ciao",
        settings=settings,
        student=student_backend(settings),
        with_teacher=False,
    )
    assert turn.student.error_kind == kind and expected in turn.student.error
    assert turn.student.text is None and turn.student.figures() == "failed"
    assert conversation.history() == []  # a failed turn is kept on screen but not sent again


def test_teacher_key_missing(home: Path, monkeypatch: pytest.MonkeyPatch, student, teacher) -> None:  # noqa: ANN001
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = _settings(monkeypatch, student, teacher_base_url=teacher.openai_url)
    assert "SHADOWTUTOR_TEACHER_API_KEY" in chat.teacher_problem(settings)
    conversation = chat.Chat(model="llama3")
    turn = chat.ask(
        conversation,
        "Ciao",
        settings=settings,
        student=student_backend(settings),
        with_teacher=True,
    )
    assert turn.student.text == STUDENT_TEXT  # the student still answers
    assert "SHADOWTUTOR_TEACHER_API_KEY" in turn.teacher.error
    assert teacher.count() == 0  # nothing was sent without a key


def test_teacher_failure_keeps_the_student(env: Settings, teacher: ModelServer) -> None:
    teacher.status = 401
    turn = chat.ask(
        chat.Chat(model="llama3"), "Ciao", settings=env,
        student=student_backend(env), with_teacher=True,
    )  # fmt: skip
    assert turn.student.text == STUDENT_TEXT
    assert "HTTP 401" in turn.teacher.error and turn.similarity is None


def test_empty_prompt_is_refused(env: Settings) -> None:
    with pytest.raises(chat.PlaygroundError, match="type a message"):
        chat.ask(
            chat.Chat(model="llama3"), "  ", settings=env,
            student=OllamaBackend(base_url="http://127.0.0.1:9"), with_teacher=False,
        )  # fmt: skip


# --- saving -------------------------------------------------------------------------------------


def _two_turns(settings: Settings, with_teacher: bool = True) -> chat.Chat:
    conversation = chat.Chat(model="llama3", system_prompt="Be brief.")
    for prompt in ("Ciao!", "Vorrei prenotare un tavolo"):
        chat.ask(
            conversation, prompt, settings=settings, student=student_backend(settings),
            with_teacher=with_teacher,
        )  # fmt: skip
    return conversation


def _user(session, name: str, role: str) -> int:  # noqa: ANN001
    user = User(username=name, role=role, password_hash="not-a-login")
    session.add(user)
    session.flush()
    return user.id


def test_save_pair_reads_back_from_the_log(env: Settings, session) -> None:  # noqa: ANN001
    conversation = _two_turns(env)
    rita = _user(session, "rita", "reviewer")
    result = chat.save_pair(
        conversation, 1, session=session, actor_id=rita, log_dir=env.log_path,
        teacher_model=env.teacher_model,
    )  # fmt: skip
    records = list(read.iter_records(env.log_path))
    assert [r["id"] for r in records] == [result.pair_id] and not result.queued
    rec = records[0]
    turn = conversation.turns[1]
    assert rec["source"] == "playground" and rec["conversation_id"] == conversation.conversation_id
    assert rec["messages"] == turn.messages and rec["messages"][-1]["content"] == turn.prompt
    assert rec["student"]["response"] == STUDENT_TEXT and rec["student"]["model"] == "llama3"
    assert rec["student"]["ttft_ms"] is not None and rec["student"]["cost_usd"] == 0.0
    assert rec["teacher"]["response"] == TEACHER_TEXT
    assert rec["teacher"]["cost_usd"] == pytest.approx(turn.teacher.cost_usd)
    assert rec["similarity"] == {"method": "lexical", "score": turn.similarity}
    assert rec["category"] == detect.detect_category(turn.prompt) and rec["language"] == "it"
    assert rec["user_hash"] and rec["user_hash"] != "rita"
    assert rec["metadata"]["playground"] == {"turn": 2, "temperature": 0.7, "max_tokens": 512}
    again = chat.save_pair(
        conversation, 1, session=session, actor_id=rita, log_dir=env.log_path, teacher_model="x"
    )
    assert again.pair_id == result.pair_id
    assert len(list(read.iter_records(env.log_path))) == 1  # never written twice


def test_save_without_teacher_marks_it_not_asked(env: Settings, session) -> None:  # noqa: ANN001
    conversation = _two_turns(env, with_teacher=False)
    admin = _user(session, "a", "admin")
    chat.save_pair(
        conversation,
        0,
        session=session,
        actor_id=admin,
        log_dir=env.log_path,
        teacher_model="gpt-4o-mini",
    )
    (rec,) = read.iter_records(env.log_path)
    assert rec["teacher"]["model"] == "gpt-4o-mini" and rec["teacher"]["response"] is None
    assert rec["teacher"]["error"] == chat.TEACHER_NOT_ASKED


def test_manager_may_not_save(env: Settings, session) -> None:  # noqa: ANN001
    conversation = _two_turns(env, with_teacher=False)
    manager = _user(session, "m", "manager")
    with pytest.raises(PermissionDenied, match="only admins and reviewers may save Playground"):
        chat.save_pair(
            conversation,
            0,
            session=session,
            actor_id=manager,
            log_dir=env.log_path,
            teacher_model="t",
        )
    assert not list(read.iter_records(env.log_path))


def test_save_and_enqueue_for_review(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    student,
    teacher,
    session,  # noqa: ANN001
) -> None:
    settings = _settings(
        monkeypatch, student, teacher_base_url=teacher.openai_url, teacher_api_key="k"
    )
    conversation = _two_turns(settings)
    ada = _user(session, "ada", "reviewer")  # a reviewer may queue the pair they saved
    result = chat.save_pair(
        conversation, 0, session=session, actor_id=ada, log_dir=settings.log_path,
        teacher_model=settings.teacher_model, queue=True, required_reviews=2,
    )  # fmt: skip
    assert result.queued and not result.already_queued
    item = session.exec(select(ReviewItem).where(ReviewItem.pair_id == result.pair_id)).one()
    assert item.strategy == "manual" and item.required_reviews == 2 and item.status == "open"
    assert item.enqueued_by == ada
    assert item.snapshot["source"] == "playground"
    assert item.snapshot["student"]["response"] == STUDENT_TEXT
    again = chat.save_pair(
        conversation, 0, session=session, actor_id=ada, log_dir=settings.log_path,
        teacher_model="t", queue=True,
    )  # fmt: skip
    assert again.queued and again.pair_id == result.pair_id
    assert len(session.exec(select(ReviewItem)).all()) == 1


def test_a_turn_the_student_failed_is_not_saved(env: Settings, session) -> None:  # noqa: ANN001
    conversation = chat.Chat(model="llama3")
    chat.ask(
        conversation, "Ciao", settings=env, student=OllamaBackend(base_url="http://127.0.0.1:9"),
        with_teacher=False,
    )  # fmt: skip
    assert conversation.turns[0].student.error
    assert "did not answer" in chat.unsavable(conversation.turns[0])
    with pytest.raises(chat.PlaygroundError, match="cannot be saved as a pair"):
        chat.save_pair(
            conversation, 0, session=session, actor_id=_user(session, "a", "admin"),
            log_dir=env.log_path, teacher_model="t",
        )  # fmt: skip
    assert not list(read.iter_records(env.log_path))


def test_an_unpriced_teacher_is_marked_cost_unknown(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    student: ModelServer,
    session,  # noqa: ANN001
) -> None:
    with ModelServer(models=["llama-server-70b"], answer=TEACHER_TEXT) as teacher:
        _unpriced(home, monkeypatch, student, teacher, session)


def _unpriced(home: Path, monkeypatch, student: ModelServer, teacher: ModelServer, session) -> None:  # noqa: ANN001, E501
    settings = _settings(
        monkeypatch, student, teacher_base_url=teacher.openai_url, teacher_api_key="k",
        teacher_model="llama-server-70b",
    )  # fmt: skip
    conversation = _two_turns(settings)
    assert (
        conversation.turns[0].teacher.error is None
        and conversation.turns[0].teacher.cost_usd is None
    )
    # issue 27 item 13: the figures showed no cost at all, not even "unknown"
    assert "cost unknown" in conversation.turns[0].teacher.figures()
    chat.save_pair(
        conversation, 0, session=session, actor_id=_user(session, "a", "admin"),
        log_dir=settings.log_path, teacher_model=settings.teacher_model,
    )  # fmt: skip
    (rec,) = read.iter_records(settings.log_path)
    assert rec["metadata"]["cost_unknown"] == ["teacher"]
    assert rec["student"]["cost_usd"] == 0.0  # the local student is priced $0

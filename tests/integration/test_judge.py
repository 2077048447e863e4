"""The LLM judge against real loopback model servers: both answer orders, position bias
cancelled, failures counted and kept, scores stored apart from human reviews, calibration,
the gate's evidence, and the CLI."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlmodel import select

from shadowtutor import db
from shadowtutor.cli import main
from shadowtutor.config import Settings
from shadowtutor.gate import criteria, evidence
from shadowtutor.judge import runner, scores
from shadowtutor.tables import JudgeScore, Review
from shadowtutor.testing.modelserver import ModelServer
from tests.support.gatesim import fill


def _answers(messages: list[dict]) -> tuple[str, str]:
    text = messages[-1]["content"]
    a = re.search(r"<answer_a>\n(.*?)\n</answer_a>", text, re.S).group(1)
    b = re.search(r"<answer_b>\n(.*?)\n</answer_b>", text, re.S).group(1)
    return a, b


def fair_judge(messages: list[dict], model: str) -> str:
    """Scores the student's answer (it says "oggi") 4 and the teacher's 5, whatever the order."""
    a, b = _answers(messages)
    sa, sb = (4 if "oggi" in a else 5), (4 if "oggi" in b else 5)
    better = "A" if sa > sb else "B"
    return f'Here is my verdict: {{"score_a": {sa}, "score_b": {sb}, "better": "{better}"}}'


def position_biased_judge(messages: list[dict], model: str) -> str:
    return '{"score_a": 5, "score_b": 3, "better": "A"}'


def _settings(settings: Settings, server: ModelServer) -> Settings:
    env = {
        "SHADOWTUTOR_HOME": settings.home,
        "SHADOWTUTOR_JUDGE_BACKEND": "openai",
        "SHADOWTUTOR_JUDGE_BASE_URL": server.openai_url,
        "SHADOWTUTOR_JUDGE_MODEL": "gpt-4o-mini",
    }
    return Settings.load(env=env)


@pytest.fixture
def filled(migrated: Settings) -> Settings:
    fill(migrated)
    return migrated


def test_both_orders_are_judged_and_stored_apart_from_reviews(filled: Settings) -> None:
    with ModelServer(models=["gpt-4o-mini"], answer=fair_judge) as server:
        s = _settings(filled, server)
        report = runner.run(s, limit=30)
        assert (report.pairs, report.calls, report.failures) == (30, 60, 0)
        assert report.cost_usd > 0  # priced like every other call (gpt-4o-mini)
        assert len([r for r in server.requests if "chat" in r[0]]) == 60
        again = runner.run(s, limit=30)  # already judged pairs are not judged again
    assert again.pairs == 30
    with db.session_scope(s.db_url) as session:
        rows = session.exec(select(JudgeScore)).all()
        reviews = session.exec(select(Review)).all()
        reviewed = {r.pair_id for r in reviews}
        assert len(rows) == 60 and len(reviews) == 120  # no judge row became a review
        assert {r.pair_id for r in rows} <= reviewed  # queued (reviewed) pairs go first
        row = rows[0]
        assert (row.student_score, row.teacher_score, row.consistent) == (4.0, 5.0, True)
        assert row.preferred == "teacher" and row.template_version == "pairwise-v1"
        assert [c["order"] for c in row.calls] == ["teacher_first", "student_first"]
        cal = scores.calibrate(session)
    assert cal.n == 60
    # Humans gave 5 twice as often as 4 (tests.support.gatesim.fill); the judge always 4.
    assert cal.confusion[3][3] + cal.confusion[4][3] == 60
    assert cal.overall.bias < 0


def test_position_bias_is_cancelled_and_flagged(filled: Settings) -> None:
    with ModelServer(models=["gpt-4o-mini"], answer=position_biased_judge) as server:
        runner.run(_settings(filled, server), limit=3)
    with db.session_scope(filled.db_url) as session:
        rows = session.exec(select(JudgeScore)).all()
    assert len(rows) == 3
    for row in rows:  # A always wins: averaged over both orders, neither answer gains
        assert row.student_score == row.teacher_score == 4.0
        assert row.consistent is False and row.preferred is None


@pytest.mark.parametrize("kind", ["http", "unreadable"])
def test_failures_are_counted_kept_and_retried(filled: Settings, kind: str) -> None:
    bad = (
        ModelServer(models=["gpt-4o-mini"], status=500)
        if kind == "http"
        else ModelServer(models=["gpt-4o-mini"], answer="I would rather not grade this.")
    )
    with bad as server:
        report = runner.run(_settings(filled, server), limit=2)
        s = _settings(filled, server)
    assert (report.pairs, report.failed_pairs, report.failures) == (0, 2, 4)
    assert report.errors and all(line for line in report.errors)
    with db.session_scope(filled.db_url) as session:
        rows = session.exec(select(JudgeScore)).all()
        assert len(rows) == 2 and all(r.error and r.student_score is None for r in rows)
    assert runner.retry_failed(s) == 2
    with ModelServer(models=["gpt-4o-mini"], answer=fair_judge) as server:
        assert runner.run(_settings(filled, server), limit=2).pairs == 2


def test_judge_settings_errors_name_the_fix(settings: Settings) -> None:
    s = Settings.load(env={"SHADOWTUTOR_HOME": settings.home, "SHADOWTUTOR_JUDGE_BACKEND": "x"})
    with pytest.raises(runner.JudgeConfigError, match="SHADOWTUTOR_JUDGE_BACKEND"):
        runner.judge_backend(s)
    s = Settings.load(
        env={"SHADOWTUTOR_HOME": settings.home, "SHADOWTUTOR_JUDGE_BACKEND": "ollama"}
    )
    with pytest.raises(runner.JudgeConfigError, match="SHADOWTUTOR_JUDGE_BASE_URL"):
        runner.judge_backend(s)


def test_the_gate_records_the_judge_and_keeps_human_counts(filled: Settings) -> None:
    cfg = criteria.load_config()
    before = evidence.gather(filled, cfg, datetime.now(UTC))
    with ModelServer(models=["gpt-4o-mini"], answer=fair_judge) as server:
        runner.run(_settings(filled, server), limit=150)
    after = evidence.gather(filled, cfg, datetime.now(UTC))
    greeting_before, greeting = before.categories["greeting"], after.categories["greeting"]
    assert greeting.scores == greeting_before.scores  # judge scores never count as reviews
    assert sum(greeting.ratings.values()) == 120 + 30  # 120 reviewed pairs, 30 judged only
    assert before.judge is None
    assert after.judge["judge_version"] == "pairwise-v1 / gpt-4o-mini"
    decision = criteria.decide(cfg, after)
    assert decision.evidence()["judge"]["pairs"] == 120
    review = next(c for c in decision.criteria if c.key == "review_score")
    assert "prediction-powered" in review.method


def test_cli_run_and_calibration(filled: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with ModelServer(models=["gpt-4o-mini"], answer=fair_judge) as server:
        monkeypatch.setenv("SHADOWTUTOR_JUDGE_BACKEND", "openai")
        monkeypatch.setenv("SHADOWTUTOR_JUDGE_BASE_URL", server.openai_url)
        monkeypatch.setenv("SHADOWTUTOR_JUDGE_MODEL", "gpt-4o-mini")
        result = CliRunner().invoke(main, ["judge", "run", "--limit", "4"])
        assert result.exit_code == 0, result.output
        assert "judged 4 pairs with 8 calls (0 failed" in result.output
    result = CliRunner().invoke(main, ["judge", "calibration"])
    assert result.exit_code == 0, result.output
    assert "4 pairs scored by the judge and by people" in result.output
    assert "category: greeting" in result.output and "confusion" in result.output
    summary = json.loads(CliRunner().invoke(main, ["judge", "calibration", "--json"]).output)
    assert summary["pairs"] == 4 and summary["scored"] == 4
    result = CliRunner().invoke(main, ["judge", "run", "--template", "nope"])
    assert result.exit_code != 0 and "unknown judge template 'nope'" in result.output


def test_an_unpriced_judge_model_costs_unknown_never_zero(filled: Settings) -> None:
    """Issue 27 item 13: a self-hosted judge printed `cost $0.0000` (never a silent $0)."""
    with ModelServer(models=["my-judge"], answer=fair_judge) as server:
        env = {
            "SHADOWTUTOR_HOME": filled.home,
            "SHADOWTUTOR_JUDGE_BACKEND": "openai",
            "SHADOWTUTOR_JUDGE_BASE_URL": server.openai_url,
            "SHADOWTUTOR_JUDGE_MODEL": "my-judge",
        }
        report = runner.run(Settings.load(env=env), limit=3)
    assert report.pairs == 3 and report.unpriced_calls == 6
    assert "cost unknown" in report.line() and "$0.0000" not in report.line()
    with db.session_scope(filled.db_url) as session:
        counts = scores.counts(session)
    assert counts["unpriced"] == 3
    assert scores.cost_text(counts["cost_usd"], counts["unpriced"]).startswith("cost unknown")
    assert scores.cost_text(0.0123, 0) == "cost $0.0123"
    assert scores.cost_text(0.0123, 2) == "cost $0.0123 plus unknown for 2 unpriced"


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_the_judge_asks_for_json_output(filled: Settings, kind: str) -> None:
    """Issue 27 item 13: the judge did not ask for JSON output where the server offers it
    (OpenAI's JSON mode, Ollama's `format: "json"`)."""
    with ModelServer(models=["gpt-4o-mini"], answer=fair_judge) as server:
        env = {
            "SHADOWTUTOR_HOME": filled.home,
            "SHADOWTUTOR_JUDGE_BACKEND": kind,
            "SHADOWTUTOR_JUDGE_BASE_URL": server.openai_url if kind == "openai" else server.url,
            "SHADOWTUTOR_JUDGE_MODEL": "gpt-4o-mini",
        }
        report = runner.run(Settings.load(env=env), limit=3)
        bodies = [body for path, body in server.requests if "chat" in path]
    assert (report.pairs, report.failures) == (3, 0)
    assert len(bodies) == 6
    if kind == "openai":
        assert all(b["response_format"] == {"type": "json_object"} for b in bodies)
    else:
        assert all(b["format"] == "json" for b in bodies)


def test_a_server_without_json_mode_is_asked_again_without_it(filled: Settings) -> None:
    with ModelServer(models=["gpt-4o-mini"], answer=fair_judge) as server:
        server.refuse = {"schema"}  # llama.cpp without a grammar: "response_format ... 400"
        report = runner.run(_settings(filled, server), limit=3)
        bodies = [body for path, body in server.requests if "chat" in path]
    assert (report.pairs, report.failures) == (3, 0)
    assert len(bodies) == 7  # the refused first call, then six plain ones
    assert [("response_format" in b) for b in bodies] == [True] + [False] * 6

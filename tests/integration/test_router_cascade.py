"""The router's cascade (issue 31): the router lets the student try, a validator reads the
student's answer, and below its threshold the teacher answers instead. Where the request says
nothing of how the student will do (only its answer does), the router alone certifies nothing
and the cascade serves the good answers with the guarantee; a sent-back answer is the record's
student answer (the student is not asked twice), the time the validator took is kept, and a
missing or failing validator sends the answer back, counted."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.config import Settings
from shadowtutor.gate import routing
from shadowtutor.log.schema import DEFAULT_STUDENT, make_record
from shadowtutor.router import live, store, threshold
from shadowtutor.router.features import Scorer
from shadowtutor.tables import RolloutEvent
from shadowtutor.testing.modelserver import ModelServer
from shadowtutor.views import router
from tests.support import reviewed
from tests.support.shadow import collector_for, openai_client, records
from tests.unit.test_gate import config

GOOD = "Here is your answer: the order is changed and the delivery moves to Friday."
BAD = "Sorry, I cannot help with that request."
WORDS = ["order", "delivery", "refund", "invoice", "account", "bag", "date", "address"]


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _reviewed(session: Any, n: int = 500) -> None:
    """``n`` reviewed business pairs whose requests look alike; 80 % of the student's
    answers are good (acceptable), the rest refuse (not): only the answer tells them apart."""
    rng = random.Random(11)
    recs, good = [], []
    for i in range(n):
        ok = rng.random() < 0.8
        text = " ".join(rng.choice(WORDS) for _ in range(6))
        recs.append(_pair(f"pair-{i}", text, GOOD if ok else BAD))
        good.append(ok)
    reviewed.review(session, recs, good)


def _pair(pair_id: str, text: str, answer: str) -> dict[str, Any]:
    return make_record(
        id=pair_id,
        category="business",
        language="en",
        messages=_messages(text),
        teacher={"model": "gpt-4o-mini", "response": "t"},
        student={"model": "llama3", "response": answer},
    )


@pytest.fixture(autouse=True)
def _fresh() -> Any:
    routing.clear_cache()
    live.clear_cache()
    yield
    routing.clear_cache()
    live.clear_cache()


@pytest.fixture
def cascade(migrated: Settings) -> Settings:
    """A rollout at 100 % with a GO for greeting only, the student's router trained on the
    pairs above and in cascade mode."""
    with db.session_scope(migrated.db_url) as s:
        s.add(RolloutEvent(action="advance", stage=100, details={"categories": ["greeting"]}))
        _reviewed(s)
        row = reviewed.train(s, 0.9)
        business = row.choices["business"]
        # the request alone certifies nothing at 90 % (80 % are acceptable, alike to see)...
        assert business["threshold"] is None and not business["category_gate"], business
        # ...the answer does: the cascade serves about the good 80 %, the rest go back
        chosen = business["cascade"]["chosen"]
        assert chosen is not None, business["cascade"]
        assert 0.6 <= chosen["share"] <= 0.9 and chosen["bound"] >= 0.9
        assert chosen["sent_back"] <= threshold.MAX_SENT_BACK
        assert row.counts["validator_features"] > 0
        store.set_mode(
            session=s,
            actor_id=permissions.SYSTEM,
            student=DEFAULT_STUDENT,
            mode="cascade",
            reason="test",
        )
    assert routing.wait_ready(migrated.db_url) and live.wait_ready(migrated.db_url)
    return migrated


def _answers(messages: list[dict[str, Any]], model: str) -> str:
    return BAD if "refund" in str(messages[-1].get("content")) else GOOD


def test_the_validator_sends_a_bad_answer_back_to_the_teacher(
    cascade: Settings, tmp_path: Path, teacher: ModelServer
) -> None:
    with ModelServer(models=["llama3"], answer=_answers) as student:
        collector = collector_for(tmp_path, student)
        try:
            client = collector.wrap(openai_client(teacher))
            good = client.chat.completions.create(
                model="gpt-4o-mini", messages=_messages("change my order date"), user="u1"
            )
            bad = client.chat.completions.create(
                model="gpt-4o-mini", messages=_messages("a refund for my order"), user="u1"
            )
            assert good.choices[0].message.content == GOOD  # the student served it
            # the student's refusal never reached the user: the teacher's answer did
            assert bad.choices[0].message.content == "echo: a refund for my order"
            logged = records(collector, expect=2)
            stats = collector.stats()
            asked = student.count("/api/chat")
            # Readiness: the chosen point per category, and the validator's live record
            traffic = router.cascade_traffic(collector.settings, DEFAULT_STUDENT)
        finally:
            collector.close()
    with db.session_scope(cascade.db_url) as s:
        view = router.load(s, config(), DEFAULT_STUDENT)
    frame = router.cascade_frame(view)
    assert list(frame["Category"]) == ["business"]
    assert frame["Student serves"][0].endswith("%") and frame["Routed alone serves"][0] == "0.0%"
    assert (traffic.checked, traffic.sent_back) == (2, 1)
    assert traffic.wait_ms is not None and traffic.validator_ms is not None
    assert "sent 1 back to the teacher (50.0%)" in traffic.sentence()
    by_text = {r["messages"][-1]["content"]: r for r in logged}
    served, back = by_text["change my order date"], by_text["a refund for my order"]
    assert served["routing"]["served_by"] == "student"
    assert served["routing"]["validator_score"] >= served["routing"]["validator_threshold"]
    assert back["routing"]["served_by"] == "teacher"
    assert back["routing"]["reason"] == live.SENT_BACK
    assert back["routing"]["validator_score"] < back["routing"]["validator_threshold"]
    # the answer sent back is the record's student answer: the student was asked once a request
    assert back["student"]["response"] == BAD and asked == 2
    assert back["teacher"]["response"] == "echo: a refund for my order"
    # its cost in time: the student's wait (its latency) and the validator's own
    assert back["student"]["latency_ms"] is not None
    assert back["metadata"]["validator_ms"] >= 0
    assert stats["validator_sent_back"] == 1 and stats["served_by_student"] == 1
    assert stats["teacher_only_by_reason"][live.SENT_BACK] == 1
    assert stats["router"]["validator_passed"] == 1
    assert stats["router"]["validator_sent_back"] == 1


def test_a_stream_is_not_validated_and_the_router_decides(cascade: Settings) -> None:
    route = routing.route(key="u1", category="business", settings=cascade)
    after = live.apply(
        route, url=cascade.db_url, messages=_messages("order"), category="business", stream=True
    )
    # no routed threshold for business (only the cascade's): the gate's decision, the teacher
    assert after.served_by == "teacher" and after.validator_threshold is None
    assert live.counts()["cascade_stream"] == 1


class _Fixed:
    def __init__(self, value: float):
        self.value = value

    def score(self, *a: Any, **kw: Any) -> float:
        return self.value

    def score_answer(self, *a: Any, **kw: Any) -> float:
        return self.value


class _Broken(_Fixed):
    def score_answer(self, *a: Any, **kw: Any) -> float:
        raise RuntimeError("boom")


def _tried() -> routing.Route:
    route = routing.Route("student", 100, 5.0, True, "s")
    active = live.Active(
        2,
        "cascade",
        {},
        _Fixed(0.9),
        cascade={"business": (0.5, 0.7)},
        validator=_Fixed(0.9),  # type: ignore[arg-type]
    )
    tried = live.decide(route, active, messages=_messages("x"), category="business")
    assert (tried.served_by, tried.router_threshold, tried.validator_threshold) == (
        "student",
        0.5,
        0.7,
    )
    return tried


@pytest.mark.parametrize(
    ("validator", "version", "reason"),
    [
        (_Fixed(0.9), 2, None),  # passes
        (_Fixed(0.2), 2, "validator: below threshold"),
        (None, 2, "validator: unavailable"),  # the version has no validator any more
        (_Fixed(0.9), 3, "validator: unavailable"),  # another version became active meanwhile
        (_Broken(0.9), 2, "validator: error"),
    ],
)
def test_check_table(validator: Scorer | None, version: int, reason: str | None) -> None:
    tried = _tried()
    active = live.Active(version, "cascade", {}, _Fixed(0.9), validator=validator)  # type: ignore[arg-type]
    after = live.check(
        tried, active, messages=_messages("x"), answer={"response": "y"}, category="business"
    )
    assert after.reason == reason
    assert after.served_by == ("student" if reason is None else "teacher")


def test_cascade_mode_needs_a_certified_cascade(migrated: Settings) -> None:
    with db.session_scope(migrated.db_url) as s:
        recs = [_pair(f"p-{i}", f"order {i}", GOOD) for i in range(40)]
        reviewed.review(s, recs, [bool(i % 3) for i in range(40)])
        reviewed.train(s, 0.95)
        with pytest.raises(store.RouterError, match="no certified cascade point"):
            store.set_mode(
                session=s,
                actor_id=permissions.SYSTEM,
                student=DEFAULT_STUDENT,
                mode="cascade",
                reason="",
            )


def test_readiness_shows_the_cascade(cascade: Settings) -> None:
    from tests.support.apputil import page_as

    at = page_as("pages/readiness.py", cascade.db_url, "manager").run()
    assert not at.exception
    texts = [t.value for t in at.text]
    assert any("mode cascade" in t for t in texts), texts
    assert any("validator has checked no live answer yet" in t for t in texts), texts
    frames = [d.value for d in at.dataframe]
    assert any("Validator serves at" in f.columns for f in frames)

"""The Readiness page in AppTest: an admin evaluates, approves, advances, rolls back, kills and
overrides; a manager and a reviewer read but cannot act."""

from __future__ import annotations

import pytest

from shadowtutor import db
from shadowtutor.config import Settings
from shadowtutor.gate import decisions, rollout
from shadowtutor.views import display
from tests.support.apputil import page_as
from tests.support.gatesim import fill

PAGE = "pages/readiness.py"


def _click(at, prefix: str):  # noqa: ANN001, ANN202
    return next(b for b in at.button if b.label.startswith(prefix)).click().run()


def _audit(at):  # noqa: ANN001, ANN202
    return next(df.value for df in at.dataframe if "What" in df.value.columns)


def _state(settings: Settings) -> rollout.RolloutState:
    with db.session_scope(settings.db_url) as s:
        return rollout.state(session=s)


def test_admin_drives_a_rollout_and_a_rollback(migrated: Settings) -> None:
    fill(migrated)
    at = page_as(PAGE, migrated.db_url, "admin").run()
    assert not at.exception, at.exception
    assert "GO for greeting" in at.success[0].value and "live preview" in at.success[0].value
    assert at.dataframe and len(at.get("plotly_chart")) == 2
    # Issue 14 item 10: not "Eligible categories: -" under a GO banner, and no cut-off names
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Eligible categories"] == "none yet"
    assert any("GO for greeting: they become eligible once an admin approves" in t.value
               for t in at.text)  # fmt: skip

    at = _click(at, "Evaluate now")
    assert not at.exception, at.exception
    assert "decision #1" in at.success[0].value
    at = _click(at, "Approve GO #1")
    assert not at.exception, at.exception
    with db.session_scope(migrated.db_url) as s:
        assert decisions.approval(session=s).approved

    at = _click(at, "Advance to 10%")
    assert not at.exception, at.exception
    state = _state(migrated)
    assert (state.stage, state.categories) == (10, ("greeting",))
    assert {m.label: m.value for m in at.metric}["Eligible categories"] == "1 category"
    assert "Eligible now: greeting" in [t.value for t in at.text]
    assert any("more requests served by the student" in c.value for c in at.caption)

    at.text_input(key="rollback-reason").input("users report odd greetings")
    at = _click(at, "Roll back to 0%")
    assert not at.exception, at.exception
    assert _state(migrated).stage == 0

    at.text_input(key="kill-reason").input("incident drill")
    at = _click(at, "Pull the kill switch")
    assert _state(migrated).killed
    assert any("kill switch is on" in e.value for e in at.error)
    at = _click(at, "Release the kill switch")
    assert not _state(migrated).killed

    trail = _audit(at)
    assert "approve decision #1" in set(trail["What"])
    pulled = "kill switch pulled by admin-user: incident drill; the teacher serves every request"
    released = "kill switch released by admin-user: incident drill; back to 0%"
    assert {pulled, released} <= set(trail["What"])
    evidence = at.dataframe[-1].value  # the chosen decision's criteria
    assert at.selectbox(key="readiness-evidence").value.startswith("#1 GO")
    assert "Success rate" in set(evidence["Criterion"])


def test_admin_overrides_a_failed_gate_with_a_reason(migrated: Settings) -> None:
    fill(migrated, failures=100, pairs=3000)  # 96.7 % success: a FAIL; P95 passes
    at = page_as(PAGE, migrated.db_url, "admin").run()
    at = _click(at, "Evaluate now")
    assert "NO-GO" in at.error[0].value
    at.text_area(key="override-reason").input("too short")
    at = _click(at, "Override NO-GO #1")
    assert any("written reason" in e.value for e in at.error)
    at.text_area(key="override-reason").input("errors come from the old GPU node, replaced today")
    at = _click(at, "Override NO-GO #1")
    assert not at.exception, at.exception
    trail = _audit(at)
    assert "OVERRIDE" in set(trail["Flag"])
    at = _click(at, "Advance to 10%")
    assert _state(migrated).stage == 10


@pytest.mark.parametrize("role", ["manager", "reviewer"])
def test_other_roles_read_but_cannot_act(migrated: Settings, role: str) -> None:
    fill(migrated)
    at = page_as(PAGE, migrated.db_url, role).run()
    assert not at.exception, at.exception
    assert at.success and at.dataframe
    assert not at.button and not at.text_input
    assert any("Read-only" in c.value for c in at.caption)


def test_a_bad_criteria_file_is_explained(migrated: Settings, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    bad = tmp_path / "gate.toml"
    bad.write_text("confidence = 7")
    monkeypatch.setenv("SHADOWTUTOR_GATE_CONFIG", str(bad))
    at = page_as(PAGE, migrated.db_url, "admin").run()
    assert not at.exception
    assert "confidence must be between" in at.error[0].value


def test_a_demoted_admin_cannot_finish_an_action(migrated: Settings) -> None:
    """The button was on screen, but the role is read again on the server before writing."""
    fill(migrated)
    at = page_as(PAGE, migrated.db_url, "admin").run()
    with db.session_scope(migrated.db_url) as s:
        from shadowtutor.tables import User

        user = s.get(User, at.session_state["user_id"])
        user.role = "manager"
        s.add(user)
    at = _click(at, "Pull the kill switch")
    assert not at.exception, at.exception
    assert not _state(migrated).killed  # nothing written
    assert any("Read-only" in c.value for c in at.caption)


def test_the_environment_kill_switch_shows(migrated: Settings, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("SHADOWTUTOR_KILL_SWITCH", "1")
    at = page_as(PAGE, migrated.db_url, "manager").run()
    assert not at.exception, at.exception
    assert any("SHADOWTUTOR_KILL_SWITCH is set" in e.value for e in at.error)


def _judge_everything(settings: Settings) -> None:
    """Judge scores (one model, the shipped template) for every logged pair of the fill."""
    from datetime import UTC, datetime

    from sqlmodel import select

    from shadowtutor.gate import evidence
    from shadowtutor.tables import JudgeScore, Review

    con = evidence.connect(settings.log_path)
    rows = con.execute("SELECT id, ts FROM pairs").fetchall()
    with db.session_scope(settings.db_url) as s:
        human = {r.pair_id: r.student_score for r in s.exec(select(Review))}
        for i, (pair_id, ts) in enumerate(rows):
            score = float(human.get(pair_id, 5 if i % 3 else 4))
            s.add(
                JudgeScore(
                    pair_id=pair_id,
                    template_version="pairwise-v1",
                    model="judge-model",
                    category="greeting",
                    language="it",
                    pair_ts=ts.replace(tzinfo=UTC),
                    student_score=score,
                    teacher_score=5.0,
                    consistent=True,
                    created_at=datetime.now(UTC),
                )
            )


def _calibrated_before_the_epoch(settings: Settings) -> None:
    """40 pairs from a month ago, reviewed then and scored by the same judge (agreeing): the
    judge's calibration from before the evidence epoch, which the gate needs to use it."""
    from datetime import UTC, datetime, timedelta

    from shadowtutor.tables import JudgeScore
    from tests.support.apputil import make_user
    from tests.support.gatesim import add_review

    then = datetime.now(UTC) - timedelta(days=30)
    reviewer = make_user(settings.db_url, "reviewer", "calibrator")
    with db.session_scope(settings.db_url) as s:
        for i in range(40):
            score = 3 + i % 3
            review = add_review(
                s, pair_id=f"old-{i:03d}", category="greeting", similarity=0.7, pair_ts=then,
                method="lexical", reviewer_id=reviewer, score=score, decision="approve",
            )  # fmt: skip
            review.created_at = then + timedelta(hours=1)
            s.add(
                JudgeScore(
                    pair_id=f"old-{i:03d}", template_version="pairwise-v1", model="judge-model",
                    category="greeting", language="it", pair_ts=then,
                    student_score=float(score), teacher_score=5.0, consistent=True,
                )
            )  # fmt: skip


def test_readiness_shows_anytime_bounds_and_the_judge(migrated: Settings) -> None:
    fill(migrated)
    at = page_as(PAGE, migrated.db_url, "manager").run()
    table = next(df.value for df in at.dataframe if "Bound" in df.value.columns)
    assert {"Estimate", "Bound", "Threshold", "n", "Method"} <= set(table.columns)
    assert any("No LLM judge scores" in t.value for t in at.text)
    _judge_everything(migrated)
    at = page_as(PAGE, migrated.db_url, "manager").run()
    # Calibrated only on the epoch's own reviews: the gate leaves the judge out and says so.
    note = next(t.value for t in at.text if t.value.startswith("Judge "))
    assert "leaves its scores out" in note
    _calibrated_before_the_epoch(migrated)
    at = page_as(PAGE, migrated.db_url, "manager").run()
    assert not at.exception, at.exception
    note = next(t.value for t in at.text if t.value.startswith("Judge "))
    assert "pairwise-v1 / judge-model" in note and "weighted kappa 1.00" in note
    table = next(df.value for df in at.dataframe if "Bound" in df.value.columns)
    review = table[(table["Criterion"] == "Mean review score")].iloc[0]
    assert review["Method"].startswith("judge + reviews")
    lines = " ".join(t.value for t in at.text)
    assert "prediction-powered" in lines  # the method in full, under the table
    assert "Mean review score: the judge" in lines  # what it saved, in words


def test_review_progress_shows_the_judge_apart_from_reviews(migrated: Settings) -> None:
    fill(migrated)
    _judge_everything(migrated)
    at = page_as("pages/review_progress.py", migrated.db_url, "manager").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Weighted kappa (quadratic)"] == "1.00"
    assert metrics["Pairs scored by both"] == "120"
    assert metrics["Reviews"] == "120"  # 1,200 judge scores are not reviews
    groups = at.dataframe[-1].value  # per category and language: no raw None / NaN cells
    assert "weighted kappa" in groups.columns and not display.still_raw(groups)
    assert any("never count as reviews" in c.value for c in at.caption)


def test_kill_switch_without_a_reason_is_refused(migrated: Settings) -> None:
    fill(migrated)
    at = page_as(PAGE, migrated.db_url, "admin").run()
    at = _click(at, "Pull the kill switch")
    assert not at.exception, at.exception
    assert any("give a reason" in e.value for e in at.error)
    assert not _state(migrated).killed


def test_managers_see_the_criteria_file_by_name_not_its_machine_path(migrated: Settings) -> None:
    fill(migrated)
    manager = page_as(PAGE, migrated.db_url, "manager").run()
    captions = " ".join(c.value for c in manager.caption)
    assert "Criteria gate.toml (shipped defaults)" in captions
    assert "/" not in captions.split("Criteria ", 1)[1].split(" · ")[0]
    admin = page_as(PAGE, migrated.db_url, "admin").run()
    assert any(str(admin_path()) in c.value for c in admin.caption)


def admin_path():  # noqa: ANN201
    from shadowtutor.gate import criteria

    return criteria.load_config(None).path


def test_readiness_shows_each_kinds_decision_and_criteria(demo_settings: Settings) -> None:
    at = page_as(PAGE, demo_settings.db_url, "manager").run()
    assert not at.exception, at.exception
    assert "By kind of request" in [h.value for h in at.subheader]
    cells = next(df.value for df in at.dataframe if "Student serves it" in df.value.columns)
    by_cell = cells.set_index(["Category", "Kind"])
    assert {("casual", "plain"), ("casual", "tools"), ("casual", "json_schema")} <= set(
        by_cell.index
    )
    # no GO of their own: the teacher answers the demo's tool and schema requests
    assert by_cell.loc[("casual", "tools"), "Student serves it"] == "no: the teacher answers"
    assert by_cell.loc[("casual", "tools"), "Decision"] != "GO"
    rows = next(df.value for df in at.dataframe if "Criterion" in df.value.columns
                and df.value["Category"].str.contains(" · ").all())  # fmt: skip
    assert {"Tool-call agreement", "Schema validity"} <= set(rows["Criterion"])
    assert {c.split(" · ")[1] for c in rows["Category"]} == {"tools", "json_schema"}
    main = next(df.value for df in at.dataframe if "Bound" in df.value.columns)
    assert "Tool-call agreement" not in set(main["Criterion"])  # the plain table stays plain

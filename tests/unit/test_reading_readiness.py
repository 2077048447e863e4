"""Issue 27 item 8, reading Readiness and the Leaderboard: the critical row's n counts what
it says, the criteria table keeps only short columns (what is missing, the judge and the
methods in words below it), the audit trail says whose each row is, and the Leaderboard
says in words when two students cannot be compared and rounds its latencies."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from shadowtutor.gate import criteria
from shadowtutor.gate.criteria import Window
from shadowtutor.gate.decisions import AuditRow
from shadowtutor.students import leaderboard
from shadowtutor.views import criteria_table, readiness
from tests.support.gatecases import agg, config

T = datetime(2026, 12, 7, 1, 31, tzinfo=UTC)


def test_critical_n_is_the_reviews_when_no_error_kind_is_configured() -> None:
    """5,756 "reviews tagged unsafe" with 674 reviews in all: n counted the pairs too."""
    w = Window(None, None, {"greeting": agg(pairs=2000), "casual": agg(pairs=1000)})
    crit = criteria.decide(config(), w).criteria[0]
    assert crit.key == "critical_errors"
    assert crit.n == 300  # 150 reviews a category; the 3,000 pairs are not looked through
    assert "(n: reviews)" in crit.method
    with_errors = config(critical__error_kinds=["content_filter"])
    crit = criteria.decide(with_errors, w).criteria[0]
    assert crit.n == 3300 and "(n: reviews + pairs)" in crit.method


def test_the_criteria_table_has_only_short_columns() -> None:
    d = criteria.decide(config(), Window(None, None, {"greeting": agg(pairs=500)}))
    table = readiness.criteria_frame(d.evidence())
    assert list(table.columns) == [
        "Category", "Criterion", "Status", "Estimate", "Bound", "Threshold", "n", "Method",
    ]  # fmt: skip
    assert table["Method"].str.len().max() <= 40
    notes = readiness.criteria_notes(d.evidence())
    assert any(line.startswith("greeting · Pairs: ") for line in notes)  # what is missing


def test_an_old_critical_row_says_what_its_n_counted() -> None:
    old = {"key": "critical_errors", "method": "reviews tagged unsafe", "category": "all"}
    assert criteria_table.method(old) == "reviews tagged unsafe (n: pairs + reviews)"


def _judged(saved: int | None, status: str) -> dict:
    return {"category": "greeting", "label": "Mean review score", "status": status,
            "n": 198, "saved": saved, "method": "prediction-powered"}  # fmt: skip


def test_judge_saved_is_said_in_words() -> None:
    """ "Judge saved: 0 reviews" alone read as if the judge were useless."""
    (passing,) = criteria_table.judge_lines([_judged(0, "PASS")])
    assert "198 human reviews alone already clear the threshold" in passing
    (waiting,) = criteria_table.judge_lines([_judged(0, "INCONCLUSIVE")])
    assert "saved no reviews yet" in waiting
    (saving,) = criteria_table.judge_lines([_judged(120, "PASS")])
    assert "saved about 120 human reviews" in saving
    assert criteria_table.judge_lines([_judged(None, "PASS")]) == []


def _row(student: str, what: str) -> AuditRow:
    return AuditRow(T, "admin", what, "", student=student)


def test_the_audit_trail_names_the_student_and_keeps_to_the_chosen_one() -> None:
    rows = [_row("llama", "decision #3: GO"), _row("qwen", "decision #2: GO"),
            _row("", "rollout advanced to 10%")]  # fmt: skip
    every = readiness.audit_frame(rows)
    assert list(every["Student"]) == ["llama", "qwen", "(rollout)"]
    mine = readiness.audit_frame(rows, "llama")
    assert list(mine["What"]) == ["decision #3: GO", "rollout advanced to 10%"]
    assert readiness.audit_others(rows, "llama") == 1


def _pairs(n_review: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    out = []
    for i in range(60):
        for name, ms in (("a", 1000.0), ("b", 909.0)):
            out.append({"request_id": f"r{i}", "student_name": name, "ok": True,
                        "similarity": 0.8, "judge": None,
                        "review": 4.0 if i < n_review else None,
                        "student_latency_ms": ms + rng.normal(0, 5)})  # fmt: skip
    return pd.DataFrame(out)


def test_latency_differences_are_whole_ms_and_no_data_is_said_in_words() -> None:
    diffs = leaderboard.differences_frame(leaderboard.paired_differences(_pairs(1), "a", "b"))
    by = diffs.set_index("metric")
    assert by.loc["latency ms", "difference"] == "+91 ms"  # was "+90.897"
    assert by.loc["latency ms", "95% interval"].endswith(" ms]")
    review = by.loc["review score"]
    assert review["difference"] == "" and "n/a" not in review.to_string()
    assert review["verdict"].startswith("only 1 prompt with a review score from both")
    assert by.loc["judge score", "verdict"].startswith("no prompt has a judge score")


def test_two_identical_reviewed_prompts_call_no_winner() -> None:
    pairs = _pairs(2)
    pairs.loc[(pairs["student_name"] == "b") & pairs["review"].notna(), "review"] = 5.0
    by = {d.metric: d for d in leaderboard.paired_differences(pairs, "a", "b")}
    assert by["review score"].verdict == "too few shared prompts"


def test_the_gate_verdict_sits_next_to_the_student() -> None:
    board = [leaderboard.Standing("a", "m", "", *(leaderboard.Metric(0, None),) * 5, None, "x")]
    assert list(leaderboard.standings_frame(board).columns)[:3] == ["rank", "student", "gate"]


def test_learning_curve_panels_keep_apart() -> None:
    """At 1,024 px the panels' titles sat on the x ticks of the row above (issue 27 item 9)."""
    days = pd.date_range("2026-11-20", periods=10, freq="D")
    curve = pd.DataFrame(
        [{"student": s, "day": d, "metric": m, "value": 0.9, "n": 10}
         for s in ("a", "b") for d in days
         for m in ("success rate", "similarity", "human score", "judge score")]
    )  # fmt: skip
    fig = leaderboard.curve_figure(curve)
    rows = sorted({tuple(ax.domain) for name, ax in fig.layout.to_plotly_json().items()
                   if name.startswith("yaxis") for ax in [fig.layout[name]]})  # fmt: skip
    assert len(rows) == 2
    assert rows[1][0] - rows[0][1] >= 0.1  # the gap between the two rows of panels

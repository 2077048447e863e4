"""What Readiness and Home say about users' feedback (shadowtutor/views/guard.py), from
constructed counts and comparisons."""

from __future__ import annotations

from shadowtutor.gate import criteria
from shadowtutor.gate.guard import (
    NO_WORSE,
    UNDECIDED,
    WORSE,
    ArmCounts,
    Arms,
    Comparison,
    assess,
)
from shadowtutor.views import guard

CONFIG = criteria.load_config()


def test_the_issues_sentence() -> None:
    row = Comparison("greeting", "thumbs_down", NO_WORSE, 118, 1000, 1089, 9000, -0.03, 0.012,
                     0.01)  # fmt: skip
    assert guard.verdict_line(row, 0.95) == (
        "greeting: student answers liked as often as the teacher's: 11.8 % vs 12.1 % thumbs "
        "down, difference ≤ +1.2 pts at 95 %"
    )


def test_lines_from_counts() -> None:
    counts = {
        "greeting": Arms(
            ArmCounts(answers=10000, rated=5000, thumbs_down=900, regenerates=300, errors=20),
            ArmCounts(answers=90000, rated=45000, thumbs_down=5400, regenerates=2700, errors=180),
        ),
        "casual": Arms(ArmCounts(answers=40, rated=2), ArmCounts(answers=400, rated=20)),
    }
    report = assess(CONFIG, counts, student="s")
    lines = [guard.verdict_line(c, report.confidence) for c in report.comparisons]
    worse = lines[0]
    assert worse.startswith(
        "greeting: student answers disliked more often than the teacher's: 18.0 % vs 12.0 % "
        "thumbs down, difference ≥ +"
    )
    assert worse.endswith("at 95 % (margin 1 pt): the rollout rolls back")
    assert lines[1].startswith("greeting: student answers regenerated no more often")
    assert lines[3] == (
        "casual: student answers against the teacher's: 0.0 % vs 0.0 % thumbs down; not "
        "decided: 98 more student rated answers and 80 more teacher rated answers needed (at "
        "least 100 each)"
    )
    assert [c.outcome for c in report.comparisons][3:] == [UNDECIDED] * 3
    assert report.comparisons[0].outcome == WORSE


def test_stage_lines_and_home() -> None:
    by_stage = {
        "greeting": {
            10: Arms(
                ArmCounts(answers=200, rated=10, thumbs_down=2, errors=1),
                ArmCounts(answers=1800, rated=90, thumbs_down=9),
            ),  # fmt: skip
            25: Arms(ArmCounts(answers=500), ArmCounts(answers=1500)),
        }
    }
    lines = guard.stage_lines(by_stage)
    assert lines[0] == (
        "greeting at 10 %: student vs teacher: thumbs down 20.0 % of 10 vs 10.0 % of 90 rated "
        "answers; regenerated 0.0 % of 200 vs 0.0 % of 1,800 answers; errors 0.5 % of 200 vs "
        "0.0 % of 1,800 answers"
    )
    assert lines[1].startswith("greeting at 25 %: student vs teacher: regenerated 0.0 % of 500")
    report = assess(
        CONFIG, {"greeting": tuple(by_stage["greeting"].values())}, student="s",
        categories=("greeting",),
    )  # fmt: skip
    shown = list(report.comparisons)
    view = guard.FeedbackView(
        report, shown, [guard.verdict_line(c, 0.95) for c in shown], lines, 3, 10
    )
    assert guard.summary(view) == (
        "Users' feedback at 10 %: 0 worse, 0 no worse, 3 not decided (student against "
        "teacher, per category and signal)"
    )
    assert len(guard.home_lines(view)) == 1 and "thumbs down" in guard.home_lines(view)[0]

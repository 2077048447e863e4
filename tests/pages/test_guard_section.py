"""The users' feedback section on Readiness and Home (app/guard.py), on a rollout at 10 % whose
student fails more often than the teacher and a log without feedback."""

from __future__ import annotations

from shadowtutor.config import Settings
from shadowtutor.gate import criteria
from tests.support import guardlog
from tests.support.apputil import app_as, page_as


def test_readiness_and_home_show_the_comparison(migrated: Settings) -> None:
    guardlog.write_rollout(migrated, criteria.load_config(migrated.gate_config or None))
    at = page_as("pages/readiness.py", migrated.db_url, "manager").run()
    assert not at.exception, at.exception
    assert "Users' feedback: student against teacher" in [h.value for h in at.subheader]
    texts = [t.value for t in at.text]
    errors = next(t for t in texts if t.startswith("greeting: student errors"))
    assert errors.startswith(
        "greeting: student errors more frequent than the teacher's: 8.3 % vs 0.6 % errors, "
        "difference ≥ +"
    )
    assert errors.endswith("(margin 0.5 pts): the rollout rolls back")
    assert any(t.startswith("no user feedback recorded yet: send it with POST /v1/feedback")
               for t in texts)  # fmt: skip
    assert (
        "greeting at 10 %: student vs teacher: errors 8.3 % of 600 vs 0.6 % of 5,400 answers"
        in texts
    )
    assert not any("thumbs down" in t and t.startswith("greeting:") for t in texts)
    assert any("needless rollbacks: error budget 5%" in t for t in texts)

    home = app_as(migrated.db_url, "reviewer").run()  # Home is the app's first page
    assert not home.exception, home.exception
    texts = [t.value for t in home.text]
    # no feedback in the log: only the errors are compared (and the page says so)
    assert (
        "Users' feedback at 10 %: 1 worse, 0 no worse, 0 not decided (student against "
        "teacher, per category and signal)" in texts
    )
    assert any(t.startswith("greeting: student errors more frequent") for t in texts)

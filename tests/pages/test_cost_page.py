"""The Cost page in AppTest: as manager and admin on demo data; an admin sets the budget, a
manager cannot; empty log, a single day and unknown models each get a clear message."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from shadowtutor import db
from shadowtutor.config import Settings
from shadowtutor.log import schema, write
from shadowtutor.tables import Budget
from tests.support.apputil import page_as, texts

PAGE = "pages/cost.py"


def _budgets(url: str) -> list[float]:
    with db.session_scope(url) as session:
        return [b.monthly_usd for b in session.exec(select(Budget).order_by(Budget.id)).all()]


def test_manager_sees_spend_charts_and_budget_but_no_budget_form(demo_settings: Settings) -> None:
    at = page_as(PAGE, demo_settings.db_url, "manager").run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert "Month to date" in labels and "Projected month end" in labels
    assert "Per month at 100% of eligible traffic" in labels
    assert len(at.get("plotly_chart")) >= 5  # trend, heatmap, four breakdowns
    assert len(at.get("download_button")) >= 6
    alerts = texts(at.success) + texts(at.info) + texts(at.warning) + texts(at.error)
    assert "monthly budget" in alerts
    assert not [b for b in at.button if b.label == "Save budget"]
    assert at.dataframe  # most expensive prompts
    top = at.dataframe[0].value
    assert {"Teacher model", "Prompt tokens", "Teacher USD"} <= set(top.columns)
    assert not {"teacher_model", "prompt_tokens"} & set(top.columns)  # no raw column names

    at.multiselect(key="cost-categories").select("greeting").run()
    assert not at.exception
    at.selectbox(key="cost-period").select("Last 7 days").run()
    at.segmented_control(key="cost-grain").set_value("Hourly").run()
    assert not at.exception


def test_admin_sets_the_budget(demo_settings: Settings) -> None:
    before = _budgets(demo_settings.db_url)
    at = page_as(PAGE, demo_settings.db_url, "admin").run()
    assert not at.exception, at.exception
    assert at.number_input, [(type(e).__name__, getattr(e, "value", None)) for e in at.main]
    at.number_input[0].set_value(1234.0)
    next(b for b in at.button if b.label == "Save budget").click().run()
    assert not at.exception, at.exception
    assert _budgets(demo_settings.db_url) == [*before, 1234.0]
    assert "$1,234.00" in [m.value for m in at.metric]
    # a zero budget is refused with a message, nothing written
    at.number_input[0].set_value(0.0)
    next(b for b in at.button if b.label == "Save budget").click().run()
    assert "more than $0" in texts(at.error)
    assert _budgets(demo_settings.db_url) == [*before, 1234.0]


def test_reviewer_is_refused(demo_settings: Settings) -> None:
    at = page_as(PAGE, demo_settings.db_url, "reviewer").run()
    assert "may not open Cost" in texts(at.error)
    assert not at.metric


def test_empty_log_says_so(migrated: Settings) -> None:
    at = page_as(PAGE, migrated.db_url, "manager").run()
    assert not at.exception, at.exception
    assert "shadow log is empty" in texts(at.info)
    assert not at.get("plotly_chart")


def _one_day_anchor() -> datetime:
    """A time an hour ago, but never so close to midnight UTC that a few minutes before it
    fall on the day before (the test needs one day of pairs)."""
    now = datetime.now(UTC)
    start = now.replace(hour=0, minute=10, second=0, microsecond=0)
    return max(now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1), start)


def _one_day_log(settings: Settings, teachers: list[tuple[str, float | None]]) -> None:
    """One casual pair a minute, all on one day, for each (teacher model, cost)."""
    now = _one_day_anchor()
    records = [
        schema.make_record(
            ts=now - timedelta(minutes=i),
            category="casual",
            language="en",
            messages=[{"role": "user", "content": f"question {i}"}],
            teacher={"model": model, "response": "ok", "cost_usd": cost, "latency_ms": 300},
        )
        for i, (model, cost) in enumerate(teachers)
    ]
    with write.LogWriter(settings.log_path) as writer:
        writer.append_many(records)


def test_single_day_with_unknown_model_and_missing_cost(migrated: Settings) -> None:
    _one_day_log(
        migrated,
        [("gpt-4o", 0.02), ("gpt-4o", None), ("in-house-llm", None), ("gpt-4o", 0.01)],
    )
    at = page_as(PAGE, migrated.db_url, "manager").run()
    assert not at.exception, at.exception
    warning = texts(at.warning)
    assert "2 pairs have no teacher cost" in warning
    assert "Models not in the price table: in-house-llm" in warning
    assert "single day" in texts(at.info)
    assert at.get("plotly_chart")  # the hourly view instead of a one-bar trend


def test_display_time_zone_and_a_wrong_one(
    demo_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHADOWTUTOR_TIMEZONE", "Asia/Tokyo")
    at = page_as(PAGE, demo_settings.db_url, "manager").run()
    assert not at.exception, at.exception
    assert "Times in Asia/Tokyo" in " ".join(c.value for c in at.caption)
    monkeypatch.setenv("SHADOWTUTOR_TIMEZONE", "Mars/Olympus")
    at = page_as(PAGE, demo_settings.db_url, "manager").run()
    assert not at.exception, at.exception
    assert "SHADOWTUTOR_TIMEZONE='Mars/Olympus'" in texts(at.error)


def test_savings_count_only_the_gates_eligible_categories(demo_settings: Settings) -> None:
    from shadowtutor.cost import spend
    from shadowtutor.log import analytics
    from shadowtutor.tables import GateDecision

    with db.session_scope(demo_settings.db_url) as session:  # Readiness: GO for two categories
        session.add(
            GateDecision(
                outcome="GO", config_hash="x", evidence={"eligible": ["greeting", "casual"]}
            )
        )
    at = page_as(PAGE, demo_settings.db_url, "manager").run()
    assert not at.exception, at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "Only eligible traffic counts: casual, greeting (eligible in gate decision #" in captions
    con = analytics.connect(demo_settings.log_path)
    f = analytics.Filters()
    eligible = spend.savings_inputs(con, f, {"casual", "greeting"})
    everything = spend.savings_inputs(con, f, set())
    assert eligible.teacher_usd < everything.teacher_usd  # business is left out
    shown = next(m.value for m in at.metric if m.label.startswith("Teacher cost of eligible"))
    assert shown == f"${eligible.teacher_usd * 30 / eligible.days:,.2f}"
    stages = at.dataframe[-1].value
    assert list(stages["stage"]) == ["10%", "25%", "50%", "100%"]


def test_every_pair_unpriced_shows_unknown_spend_not_zero(migrated: Settings) -> None:
    _one_day_log(migrated, [("llama-server", None)] * 3)  # a self-hosted, unpriced teacher
    at = page_as(PAGE, migrated.db_url, "manager").run()
    assert not at.exception, at.exception
    values = {m.label: m.value for m in at.metric}
    assert values["Teacher spend today"] == "unknown"
    assert values["Month to date"] == "unknown"
    assert values["Projected month end"] == "unknown"
    error = texts(at.error)
    assert "Spend unknown" in error and "llama-server" in error
    assert "SHADOWTUTOR_PRICE_TABLE" in error


def test_an_unpriced_model_name_with_markdown_is_shown_as_text(migrated: Settings) -> None:
    """Issue 27 item 2: a logged model name with an image in it reached the "Spend unknown"
    error as Markdown, so every admin's and manager's browser fetched the image."""
    _one_day_log(migrated, [("gpt ![](http://127.0.0.1:9/x.png) <img src=x>", None)] * 3)
    at = page_as(PAGE, migrated.db_url, "manager").run()
    assert not at.exception, at.exception
    error = texts(at.error)
    assert "Spend unknown" in error
    assert not re.search(r"(?<!\\)[\[<]", error)  # escaped: shown, never rendered
    assert "gpt !\\[\\](http\\://127.0.0.1:9/x.png) \\<img src=x\\>" in error

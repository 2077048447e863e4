"""Teacher spend queries (core/shadowtutor/cost/spend.py) on the hand-worked five-pair log
(tests/support/handlog.py): per day, hour, weekday x hour and dimension, the most expensive
prompts, cost coverage and its message, the budget windows and the savings inputs."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from shadowtutor.cost import budget, pricing, spend
from shadowtutor.log import analytics, write
from shadowtutor.log.analytics import Filters
from tests.support.handlog import ALL, FIXTURE, record


def _log(folder: Path, rows: list[tuple]) -> analytics.duckdb.DuckDBPyConnection:
    with write.LogWriter(folder) as writer:
        writer.append_many(record(r) for r in rows)
    return analytics.connect(folder, "UTC")


def test_spend_by_day(con) -> None:
    df = spend.spend_by_day(con, ALL)
    assert [d.day for d in df["day"]] == [10, 11, 12]
    assert df["teacher_usd"].tolist() == pytest.approx([3.0, 0.5, 3.0])
    assert df["pairs"].tolist() == [2, 2, 1]
    assert df["priced"].tolist() == [2, 1, 1]  # p4's model is unknown


def test_spend_by_model_and_heatmap(con) -> None:
    df = spend.spend_by(con, ALL, "model")
    assert df["value"].tolist() == ["gpt-4o", "gpt-4o-mini", "mystery-model"]
    assert df["teacher_usd"].tolist() == pytest.approx([6.0, 0.5, 0.0])
    assert df["share"].tolist() == pytest.approx([6 / 6.5, 0.5 / 6.5, 0.0])
    heat = spend.spend_heatmap(con, ALL)
    # 2026-01-10 is a Saturday (6): 09:00 and 10:00.
    sat = heat[heat["weekday"] == 6]
    assert sat[["hour", "teacher_usd"]].values.tolist() == [[9, 1.0], [10, 2.0]]
    with pytest.raises(ValueError, match="dimension"):
        spend.spend_by(con, ALL, "teacher_model; DROP TABLE facts")


def test_top_prompts_read_back_prompt_text(con) -> None:
    df = spend.top_prompts(con, ALL, limit=3)
    assert df["id"].tolist() == ["p5", "p2", "p1"]
    assert df["prompt"].tolist() == ["ask p5", "ask p2", "ask p1"]


def test_cost_coverage_names_unknown_models(con) -> None:
    df = spend.cost_coverage(con, ALL, pricing.load_table())
    assert df.to_dict("records") == [
        {"teacher_model": "mystery-model", "pairs": 1, "missing": 1, "in_price_table": False}
    ]
    message = spend.coverage_message(df)
    assert message.startswith("1 pair has no teacher cost")
    assert "Models not in the price table: mystery-model" in message
    assert "no token usage" not in message
    assert spend.coverage_message(df.iloc[0:0]) is None


def test_spend_windows_and_projection(con) -> None:
    now = datetime(2026, 1, 13, 9, 0)
    w = spend.spend_windows(con, now)
    assert (w.today, w.month_to_date, w.trailing_7d) == pytest.approx((0.0, 6.5, 6.5))
    assert w.first_pair == datetime(2026, 1, 10, 9, 0)
    rate = budget.run_rate(w.trailing_7d, now, w.first_pair)
    assert rate == pytest.approx(6.5 / 3)  # the log covers exactly 3 of the 7 days
    proj = budget.project(now=now, month_to_date=w.month_to_date, daily_rate=rate)
    assert proj.days_left == pytest.approx(18.625)  # to Feb 1 00:00
    assert proj.projected == pytest.approx(6.5 + 6.5 / 3 * 18.625)
    status = budget.budget_status(proj, 10.0)
    assert status.level == 50
    # (10 - 6.5) / (6.5/3) = 1.615 days after Jan 13 09:00 -> Jan 14, 23:46
    assert status.crossing == date(2026, 1, 14)
    assert spend.spend_windows(con, datetime(2026, 1, 12, 18, 0)).today == pytest.approx(3.0)


def test_savings_inputs(con) -> None:
    s = spend.savings_inputs(con, ALL, {"greeting", "casual"})
    # eligible: p1, p3, p4; teacher 1.00 + 0.50; the student's only successful eligible
    # answer (p1) cost 0.01, so 3 requests x 0.01
    assert (s.days, s.requests) == (3, 3)
    assert s.teacher_usd == pytest.approx(1.5)
    assert s.student_usd == pytest.approx(0.03)
    everything = spend.savings_inputs(con, ALL, frozenset())
    assert (everything.requests, everything.teacher_usd) == (5, pytest.approx(6.5))
    assert everything.student_usd == pytest.approx(0.01 / 3 * 5)


def test_spend_by_hour(con, log_dir: Path) -> None:  # noqa: ANN001
    df = spend.spend_by_hour(con, ALL)
    assert [(h.day, h.hour) for h in df["hour"]] == [(10, 9), (10, 10), (11, 9), (11, 23), (12, 12)]
    assert df["teacher_usd"].tolist() == pytest.approx([1.0, 2.0, 0.5, 0.0, 3.0])
    assert df["pairs"].tolist() == [1, 1, 1, 1, 1]
    greeting = spend.spend_by_hour(con, Filters(categories=("greeting",)))
    assert greeting["teacher_usd"].tolist() == pytest.approx([1.0, 0.5])
    tokyo = spend.spend_by_hour(analytics.connect(log_dir, "Asia/Tokyo"), ALL)
    assert (12, 8) in [(h.day, h.hour) for h in tokyo["hour"]]  # p4, 23:30 UTC on the 11th


@pytest.mark.parametrize(
    ("dimension", "values", "usd", "pairs", "priced"),
    [
        ("category", ["business", "greeting", "casual"], [5.0, 1.5, 0.0], [2, 2, 1], [2, 2, 0]),
        ("language", ["en", "de"], [4.0, 2.5], [3, 2], [2, 2]),
        ("source", ["live", "replay"], [3.5, 3.0], [4, 1], [3, 1]),
    ],
)
def test_spend_by_each_dimension(
    con,  # noqa: ANN001
    dimension: str,
    values: list[str],
    usd: list[float],
    pairs: list[int],
    priced: list[int],
) -> None:
    df = spend.spend_by(con, ALL, dimension)
    assert df["value"].tolist() == values
    assert df["teacher_usd"].tolist() == pytest.approx(usd)
    assert (df["pairs"].tolist(), df["priced"].tolist()) == (pairs, priced)
    assert df["share"].tolist() == pytest.approx([u / 6.5 for u in usd])


def test_spend_by_a_filter_that_matches_nothing(con) -> None:  # noqa: ANN001
    df = spend.spend_by(con, Filters(categories=("weather",)), "model")
    assert df.empty and "share" in df.columns


def test_top_prompts_follow_the_filters_and_leave_out_unpriced_pairs(con) -> None:  # noqa: ANN001
    assert spend.top_prompts(con, ALL)["id"].tolist() == ["p5", "p2", "p1", "p3"]  # p4: no cost
    de = spend.top_prompts(con, Filters(languages=("de",)))
    assert de[["id", "prompt"]].values.tolist() == [["p2", "ask p2"], ["p3", "ask p3"]]
    assert de["teacher_usd"].tolist() == pytest.approx([2.0, 0.5])


def test_cost_coverage_tells_unknown_models_from_missing_usage(tmp_path: Path) -> None:
    unpriced = [(f"q{i}", *row[1:3], None, *row[4:]) for i, row in enumerate(FIXTURE[:2])]
    con = _log(tmp_path / "unpriced", [*unpriced, FIXTURE[3]])  # 2 x gpt-4o, 1 x mystery-model
    df = spend.cost_coverage(con, ALL, pricing.load_table())
    assert df.to_dict("records") == [
        {"teacher_model": "gpt-4o", "pairs": 2, "missing": 2, "in_price_table": True},
        {"teacher_model": "mystery-model", "pairs": 1, "missing": 1, "in_price_table": False},
    ]
    message = spend.coverage_message(df)
    assert message.startswith("3 pairs have no teacher cost and count as $0 here.")
    assert "Models not in the price table: mystery-model" in message
    assert message.endswith("2 are calls to gpt-4o that reported no token usage.")


def test_savings_inputs_follow_the_filters_and_a_student_without_costs(
    con,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    replay = spend.savings_inputs(con, Filters(sources=("replay",)), frozenset())
    assert (replay.days, replay.requests, replay.teacher_usd, replay.student_usd) == (
        1,
        1,
        pytest.approx(3.0),
        0.0,
    )
    free = _log(tmp_path / "free", [(*row[:9], None, *row[10:]) for row in FIXTURE])
    s = spend.savings_inputs(free, ALL, {"business"})
    assert (s.days, s.requests, s.teacher_usd, s.student_usd) == (
        3,
        2,
        pytest.approx(5.0),
        0.0,
    )  # days: of the period


def test_a_snapshot_is_priced_as_its_model_but_a_different_tier_is_unknown() -> None:
    table = pricing.load_table()
    # a dated snapshot or an Ollama tag is the same model at the same price
    assert table.lookup("gpt-5-2025-08-07").model == "gpt-5"  # type: ignore[union-attr]
    assert table.lookup("gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"  # type: ignore[union-attr]
    assert table.lookup("llama3:8b").model == "llama3"  # type: ignore[union-attr]
    # another tier of a known model has prices of its own: unknown, never the base's price
    for model in ("gpt-5-pro", "o3-pro", "gpt-4o-audio-preview", "gpt-5-codex", "o3-deep-research"):
        assert table.lookup(model) is None, model

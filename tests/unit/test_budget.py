"""Budget maths (core/shadowtutor/cost/budget.py) over plain numbers: month bounds, run rate,
projection, alerts and their wording, savings. (The budget store's role check stays with the
store tests in test_analytics until the permission check lands.)"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from shadowtutor.cost import budget


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (datetime(2026, 1, 15, 12, 30, 5, 7), datetime(2026, 1, 1), datetime(2026, 2, 1)),
        (datetime(2026, 3, 1), datetime(2026, 3, 1), datetime(2026, 4, 1)),  # the first instant
        (datetime(2028, 2, 29, 8), datetime(2028, 2, 1), datetime(2028, 3, 1)),  # leap day
        (datetime(2026, 12, 31, 23, 59), datetime(2026, 12, 1), datetime(2027, 1, 1)),
    ],
)
def test_month_bounds(now: datetime, start: datetime, end: datetime) -> None:
    assert budget.month_bounds(now) == (start, end)


@pytest.mark.parametrize(
    ("now", "mtd", "rate", "days_left", "projected", "month_end"),
    [
        # the 1st at 06:00: 30.75 days left, the trailing rate carries the projection
        (datetime(2026, 3, 1, 6), 2.5, 10.0, 30.75, 310.0, datetime(2026, 4, 1)),
        (datetime(2026, 3, 1, 0), 0.0, 10.0, 31.0, 310.0, datetime(2026, 4, 1)),
        # the 15th at noon of January: 16.5 days left
        (datetime(2026, 1, 15, 12), 145.0, 10.0, 16.5, 310.0, datetime(2026, 2, 1)),
        # February of a non-leap year
        (datetime(2026, 2, 15, 0), 140.0, 10.0, 14.0, 280.0, datetime(2026, 3, 1)),
        # December runs into January of the next year
        (datetime(2026, 12, 20, 0), 100.0, 5.0, 12.0, 160.0, datetime(2027, 1, 1)),
        (datetime(2026, 12, 31, 18), 300.0, 8.0, 0.25, 302.0, datetime(2027, 1, 1)),
    ],
)
def test_projection(now, mtd, rate, days_left, projected, month_end) -> None:
    p = budget.project(now=now, month_to_date=mtd, daily_rate=rate)
    assert p.days_left == pytest.approx(days_left)
    assert p.projected == pytest.approx(projected)
    assert p.month_end == month_end
    assert p.month_start == now.replace(day=1, hour=0)


@pytest.mark.parametrize(
    ("trailing", "now", "first", "rate"),
    [
        (70.0, datetime(2026, 1, 20), datetime(2025, 12, 1), 10.0),  # full 7 days
        (30.0, datetime(2026, 1, 4), datetime(2026, 1, 1), 10.0),  # 3 days of log
        (5.0, datetime(2026, 1, 1, 6), datetime(2026, 1, 1, 0), 5.0),  # hours old: 1 day floor
        (0.0, datetime(2026, 1, 1), None, 0.0),  # empty log
    ],
)
def test_run_rate(trailing, now, first, rate) -> None:
    assert budget.run_rate(trailing, now, first) == pytest.approx(rate)


@pytest.mark.parametrize(
    ("mtd", "rate", "budget_usd", "level", "crossing", "over", "severity"),
    [
        (40.0, 1.0, 100.0, 0, None, False, "success"),  # 40 + 16.5 = 56.5 < 100
        (50.0, 1.0, 100.0, 50, None, False, "info"),
        (50.0, 4.0, 100.0, 50, date(2026, 1, 28), False, "warning"),  # +12.5 days from 15 noon
        (79.9, 1.0, 100.0, 50, None, False, "info"),
        (80.0, 0.0, 100.0, 80, None, False, "warning"),
        (90.0, 10.0, 100.0, 80, date(2026, 1, 16), False, "warning"),  # +1 day -> 16th noon
        (100.0, 1.0, 100.0, 100, None, True, "error"),
        (150.0, 1.0, 100.0, 100, None, True, "error"),
        (0.0, 10.0, 300.0, 0, None, False, "success"),  # 165 projected: never crosses
        (0.0, 20.0, 300.0, 0, date(2026, 1, 30), False, "warning"),  # +15 days -> 30th noon
    ],
)
def test_budget_alerts(mtd, rate, budget_usd, level, crossing, over, severity) -> None:
    proj = budget.project(now=datetime(2026, 1, 15, 12), month_to_date=mtd, daily_rate=rate)
    status = budget.budget_status(proj, budget_usd)
    assert (status.level, status.crossing, status.already_over) == (level, crossing, over)
    sev, text = budget.alert_message(status, proj)
    assert sev == severity
    assert f"${budget_usd:,.2f}" in text
    if crossing:
        assert crossing.isoformat() in text


def test_budget_crossing_in_december_stays_in_the_year() -> None:
    proj = budget.project(now=datetime(2026, 12, 30, 0), month_to_date=90.0, daily_rate=5.0)
    assert budget.budget_status(proj, 100.0).crossing is None  # 2 days left, needs 2 days
    assert budget.budget_status(proj, 99.0).crossing == date(2026, 12, 31)


def test_budget_must_be_positive() -> None:
    proj = budget.project(now=datetime(2026, 1, 1), month_to_date=0.0, daily_rate=0.0)
    with pytest.raises(ValueError):
        budget.budget_status(proj, 0.0)


@pytest.mark.parametrize(
    ("teacher", "student", "days", "stage", "flat", "at_stage", "at_full"),
    [
        (1.5, 0.0, 3, 25, 0.0, 3.75, 15.0),  # $15/month of eligible traffic, 25% served
        (1.5, 0.0, 3, 0, 0.0, 0.0, 15.0),  # shadow only: nothing saved yet
        (1.5, 0.0, 3, 25, 5.0, -1.25, 10.0),  # a $5/month rental costs more than 25% saves
        (1.5, 0.3, 3, 100, 0.0, 12.0, 12.0),  # a per-token student cost is subtracted
        (60.0, 0.0, 60, 50, 100.0, -85.0, -70.0),  # a rental bigger than the teacher bill
        (0.0, 0.0, 0, 50, 0.0, 0.0, 0.0),  # no data
    ],
)
def test_savings(teacher, student, days, stage, flat, at_stage, at_full) -> None:
    s = budget.savings(
        teacher_usd=teacher, student_usd=student, days=days, stage=stage, flat_monthly=flat
    )
    assert (s.at_stage, s.at_full) == pytest.approx((at_stage, at_full))


def test_budget_status_shares() -> None:
    # Jan 15 noon: 16.5 days left; 25 + 5 x 16.5 = 107.5; 100 is reached 15 days later.
    proj = budget.project(now=datetime(2026, 1, 15, 12), month_to_date=25.0, daily_rate=5.0)
    status = budget.budget_status(proj, 100.0)
    assert (status.used, status.projected_share) == pytest.approx((0.25, 1.075))
    assert (status.level, status.crossing, status.already_over) == (0, date(2026, 1, 30), False)


@pytest.mark.parametrize(
    ("mtd", "rate", "expected"),
    [
        (
            120.0,
            1.0,
            (
                "error",
                "Month to date $120.00 is 120% of the $100.00 monthly budget: the budget is "
                "exceeded (100% alert).",
            ),
        ),
        (
            85.0,
            2.0,
            (
                "warning",
                "Month to date $85.00 is 85% of the $100.00 monthly budget (80% alert). At the "
                "run rate of $2.00/day the projection ($118.00) crosses the budget on 2026-01-23.",
            ),
        ),
        (
            10.0,
            1.0,
            (
                "success",
                "Month to date $10.00 is 10% of the $100.00 monthly budget. The projection for "
                "the month is $26.50, within budget.",
            ),
        ),
    ],
)
def test_alert_message_wording(mtd: float, rate: float, expected: tuple[str, str]) -> None:
    proj = budget.project(now=datetime(2026, 1, 15, 12), month_to_date=mtd, daily_rate=rate)
    assert budget.alert_message(budget.budget_status(proj, 100.0), proj) == expected


def test_savings_scale_to_a_30_day_month() -> None:
    s = budget.savings(teacher_usd=10.0, student_usd=1.0, days=10, stage=50, flat_monthly=5.0)
    assert (s.teacher_monthly, s.student_monthly, s.flat_monthly, s.stage) == (30.0, 3.0, 5.0, 50)
    assert (s.at_stage, s.at_full) == pytest.approx((0.5 * 27 - 5, 27 - 5))

"""Budget, projection and savings: pure maths over plain numbers, plus the budget store.

Conventions (documented in the README):
- Months are calendar months in the display time zone. "Now" is a naive local datetime.
- Run rate: the teacher spend of the trailing 7 days divided by the days of log those 7 days
  cover (at least one day, so a log a few hours old does not extrapolate wildly). Using a
  trailing window, not the month so far, keeps the projection sane on the 1st of a month.
- Projection to the end of the month: month-to-date spend + run rate x days left (fractional).
- Alerts at 50%, 80% and 100% of the monthly budget; the crossing date is when month-to-date
  plus the run rate reaches the budget, if that happens before the month ends.
- Savings per month (30 days): stage% x (teacher cost - student per-token cost) of eligible
  traffic, minus the student's flat monthly cost, which is paid whatever the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from shadowtutor.accounts import permissions
from shadowtutor.errors import ShadowTutorError
from shadowtutor.tables import Budget

ALERT_LEVELS = (50, 80, 100)
RUN_RATE_DAYS = 7
DAYS_PER_MONTH = 30


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Start of ``now``'s month and start of the next one (January after December)."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        return start, start.replace(year=start.year + 1, month=1)
    return start, start.replace(month=start.month + 1)


def run_rate(trailing_spend: float, now: datetime, first_pair: datetime | None) -> float:
    """Dollars a day from the trailing :data:`RUN_RATE_DAYS` days' spend."""
    if first_pair is None:
        return 0.0
    covered = (now - first_pair).total_seconds() / 86400
    days = min(float(RUN_RATE_DAYS), max(1.0, covered))
    return trailing_spend / days


@dataclass(frozen=True)
class Projection:
    now: datetime
    month_start: datetime
    month_end: datetime  # exclusive: the first moment of the next month
    days_left: float
    daily_rate: float
    month_to_date: float
    projected: float


def project(*, now: datetime, month_to_date: float, daily_rate: float) -> Projection:
    start, end = month_bounds(now)
    days_left = (end - now).total_seconds() / 86400
    return Projection(
        now=now,
        month_start=start,
        month_end=end,
        days_left=days_left,
        daily_rate=daily_rate,
        month_to_date=month_to_date,
        projected=month_to_date + daily_rate * days_left,
    )


@dataclass(frozen=True)
class BudgetStatus:
    budget: float
    used: float  # month to date / budget
    level: int  # highest of ALERT_LEVELS reached by month-to-date spend, else 0
    projected_share: float  # projection / budget
    crossing: date | None  # the day the projection reaches the budget (None: not this month)
    already_over: bool


def budget_status(projection: Projection, budget: float) -> BudgetStatus:
    if budget <= 0:
        raise ValueError("a budget must be more than $0")
    mtd = projection.month_to_date
    used = mtd / budget
    level = max((lvl for lvl in ALERT_LEVELS if used * 100 >= lvl), default=0)
    crossing = None
    if mtd < budget and projection.daily_rate > 0:
        at = projection.now + timedelta(days=(budget - mtd) / projection.daily_rate)
        if at < projection.month_end:
            crossing = at.date()
    return BudgetStatus(
        budget=budget,
        used=used,
        level=level,
        projected_share=projection.projected / budget,
        crossing=crossing,
        already_over=mtd >= budget,
    )


@dataclass(frozen=True)
class Savings:
    teacher_monthly: float  # teacher cost of all eligible traffic, per month
    student_monthly: float  # the student's per-token cost of that traffic, per month
    flat_monthly: float
    stage: int
    at_stage: float  # net dollars saved per month at the current stage
    at_full: float  # ... at 100% of eligible traffic


def savings(
    *, teacher_usd: float, student_usd: float, days: int, stage: int, flat_monthly: float
) -> Savings:
    """Monthly savings from ``days`` of eligible traffic costing ``teacher_usd`` on the teacher
    and ``student_usd`` on the student; ``stage`` is the percent the student serves."""
    scale = DAYS_PER_MONTH / days if days > 0 else 0.0
    teacher = teacher_usd * scale
    student = student_usd * scale
    return Savings(
        teacher_monthly=teacher,
        student_monthly=student,
        flat_monthly=flat_monthly,
        stage=stage,
        at_stage=stage / 100 * (teacher - student) - flat_monthly,
        at_full=(teacher - student) - flat_monthly,
    )


# --- store -------------------------------------------------------------------------------


class BudgetError(ShadowTutorError, ValueError):
    """A budget that cannot be set; the message says why."""


def current_budget(*, session: Session) -> Budget | None:
    """The newest budget row (rows are appended; the newest applies)."""
    stmt = select(Budget).order_by(col(Budget.set_at).desc(), col(Budget.id).desc()).limit(1)
    return session.exec(stmt).first()


def set_budget(*, session: Session, monthly_usd: float, actor_id: permissions.Actor) -> Budget:
    """Append a budget row (``budget.set``: admins)."""
    who = permissions.require(session, actor_id, "budget.set")
    if not monthly_usd or monthly_usd <= 0:
        raise BudgetError("the monthly budget must be more than $0")
    row = Budget(monthly_usd=float(monthly_usd), set_by=who.id)
    session.add(row)
    session.flush()
    return row


def stage_table(savings: Savings, stages: tuple[int, ...]) -> list[dict[str, str | float]]:
    """Net monthly savings at each rollout stage (the flat student cost paid at every one)."""
    gross = savings.teacher_monthly - savings.student_monthly
    return [
        {"stage": f"{stage}%", "saved per month": stage / 100 * gross - savings.flat_monthly}
        for stage in stages
    ]


def alert_message(status: BudgetStatus, projection: Projection) -> tuple[str, str]:
    """(severity, text) for the page: severity is error, warning, info or success."""
    mtd, budget = projection.month_to_date, status.budget
    head = f"Month to date ${mtd:,.2f} is {status.used:.0%} of the ${budget:,.2f} monthly budget"
    if status.already_over:
        return "error", f"{head}: the budget is exceeded (100% alert)."
    ahead = (
        f" At the run rate of ${projection.daily_rate:,.2f}/day the projection "
        f"(${projection.projected:,.2f}) crosses the budget on {status.crossing:%Y-%m-%d}."
        if status.crossing
        else f" The projection for the month is ${projection.projected:,.2f}, within budget."
    )
    if status.level >= 80:
        return "warning", f"{head} (80% alert).{ahead}"
    if status.level >= 50:
        return ("warning" if status.crossing else "info"), f"{head} (50% alert).{ahead}"
    return ("warning" if status.crossing else "success"), f"{head}.{ahead}"

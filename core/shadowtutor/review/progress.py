"""Review progress: queue size, reviews today, per reviewer counts and times."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from shadowtutor.review.agreement import Rating
from shadowtutor.tables import Review, ReviewItem, User, as_utc, utcnow


@dataclass(frozen=True)
class ReviewerStats:
    reviewer: str
    reviews: int
    approved: int
    rejected: int
    skipped: int
    today: int
    median_seconds: float | None


@dataclass(frozen=True)
class Progress:
    queue_open: int  # items still needing reviews
    items_done: int
    items_total: int
    reviews_total: int  # current approve/reject reviews
    reviewed_today: int
    median_seconds: float | None
    per_reviewer: list[ReviewerStats]


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def progress(*, session: Session, day_start: datetime | None = None) -> Progress:
    """Queue and reviewer figures. ``day_start``: start of "today" (aware, in the team's
    time zone); defaults to midnight UTC."""
    now = utcnow()
    day_start = day_start or now.replace(hour=0, minute=0, second=0, microsecond=0)
    status_counts = dict(
        session.exec(select(ReviewItem.status, func.count()).group_by(ReviewItem.status)).all()
    )
    rows = session.exec(
        select(
            func.coalesce(func.nullif(User.display_name, ""), User.username),
            Review.decision,
            Review.created_at,
            Review.seconds_spent,
        )
        .join(User, col(User.id) == Review.reviewer_id)
        .where(Review.is_current)
    ).all()
    per: dict[str, dict[str, Any]] = {}
    all_seconds: list[float] = []
    today_total = 0
    for username, decision, created_at, seconds in rows:
        entry = per.setdefault(
            username,
            {"approve": 0, "reject": 0, "skip": 0, "today": 0, "seconds": []},
        )
        entry[decision] = entry.get(decision, 0) + 1
        if decision == "skip":
            continue
        if created_at is not None and as_utc(created_at) >= day_start:
            entry["today"] += 1
            today_total += 1
        if seconds is not None:
            entry["seconds"].append(float(seconds))
            all_seconds.append(float(seconds))
    per_reviewer = [
        ReviewerStats(
            reviewer=name,
            reviews=e["approve"] + e["reject"],
            approved=e["approve"],
            rejected=e["reject"],
            skipped=e["skip"],
            today=e["today"],
            median_seconds=_median(e["seconds"]),
        )
        for name, e in sorted(per.items())
    ]
    return Progress(
        queue_open=int(status_counts.get("open", 0)),
        items_done=int(status_counts.get("done", 0)),
        items_total=int(sum(status_counts.values())),
        reviews_total=sum(r.reviews for r in per_reviewer),
        reviewed_today=today_total,
        median_seconds=_median(all_seconds),
        per_reviewer=per_reviewer,
    )


def ratings(*, session: Session) -> list[Rating]:
    """Every current review as a rating by its reviewer (shown by display name, as everywhere
    on the page), the input of the agreement figures."""
    stmt = (
        select(Review, func.coalesce(func.nullif(User.display_name, ""), User.username))
        .join(User, col(User.id) == Review.reviewer_id)
        .where(Review.is_current)
        .order_by(col(Review.item_id), col(Review.id))
    )
    return [
        Rating(r.item_id, name, r.student_score, r.decision, r.pair_id)
        for r, name in session.exec(stmt)
    ]


# --- the LLM judge against the reviewers ---------------------------------------------------


@dataclass(frozen=True)
class JudgeCalibration:
    """The judge's agreement with people on the same pairs, as page-ready tables. Judge
    scores are never reviews: they appear only here and in the gate's evidence."""

    calibration: Any  # shadowtutor.judge.calibration.Calibration
    counts: dict[str, Any]

    def confusion_rows(self) -> list[dict[str, Any]]:
        return [
            {"human score": s, **{f"judge {j}": n for j, n in zip(range(1, 6), row, strict=True)}}
            for s, row in zip(range(1, 6), self.calibration.confusion, strict=True)
        ]

    def group_rows(self) -> list[dict[str, Any]]:
        def clean(x: float) -> float | None:
            return None if x != x else round(x, 3)  # NaN -> empty cell

        cal = self.calibration
        return [
            {
                "group": g.group,
                "pairs": g.n,
                "weighted kappa": clean(g.kappa),
                "mean bias (judge - human)": clean(g.bias),
                "exact agreement": clean(g.exact),
                "same answer preferred in both orders": clean(g.consistent),
            }
            for g in (cal.overall, *cal.groups)
        ]


def judge_calibration(*, session: Session) -> JudgeCalibration:
    from shadowtutor.judge import scores

    return JudgeCalibration(scores.calibrate(session), scores.counts(session))


def per_day(*, session: Session, tz: tzinfo) -> list[dict[str, Any]]:
    """Current approve/reject reviews per local day and reviewer (display name):
    rows of day, reviewer, reviews, oldest day first."""
    rows = session.exec(
        select(func.coalesce(func.nullif(User.display_name, ""), User.username), Review.created_at)
        .join(User, col(User.id) == Review.reviewer_id)
        .where(Review.is_current, Review.decision != "skip")
    ).all()
    counts: Counter[tuple[date, str]] = Counter()
    for name, created_at in rows:
        counts[(as_utc(created_at).astimezone(tz).date(), name)] += 1
    return [
        {"day": day, "reviewer": name, "reviews": n} for (day, name), n in sorted(counts.items())
    ]


def agreement_per_day(*, session: Session, tz: tzinfo) -> list[dict[str, Any]]:
    """Raw agreement over time: for items with two or more current approve/reject reviews,
    whether all decisions match, counted on the local day of the item's latest review.
    Rows of day, items, agreed, share."""
    rows = session.exec(
        select(Review.item_id, Review.decision, Review.created_at).where(
            Review.is_current, Review.decision != "skip"
        )
    ).all()
    items: dict[int, list[tuple[str, datetime]]] = {}
    for item_id, decision, created_at in rows:
        items.setdefault(item_id, []).append((decision, as_utc(created_at)))
    per: dict[date, list[int]] = {}
    for reviews in items.values():
        if len(reviews) < 2:
            continue
        day = max(t for _, t in reviews).astimezone(tz).date()
        entry = per.setdefault(day, [0, 0])
        entry[0] += 1
        entry[1] += len({d for d, _ in reviews}) == 1
    return [
        {"day": day, "items": n, "agreed": agreed, "share": agreed / n}
        for day, (n, agreed) in sorted(per.items())
    ]

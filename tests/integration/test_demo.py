from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import func, select

from shadowtutor import db
from shadowtutor.demo import generate
from shadowtutor.tables import Budget, Review, ReviewItem, User

END = datetime(2026, 3, 31, 18, tzinfo=UTC)


def test_same_seed_same_data() -> None:
    a = [p.record for p in generate.generate_pairs(pairs=300, days=10, seed=5, end=END)]
    b = [p.record for p in generate.generate_pairs(pairs=300, days=10, seed=5, end=END)]
    c = [p.record for p in generate.generate_pairs(pairs=300, days=10, seed=6, end=END)]
    assert a == b and a != c


def test_pairs_are_realistic() -> None:
    recs = [p.record for p in generate.generate_pairs(pairs=6000, days=28, seed=1, end=END)]
    assert len(recs) == 6000 and recs == sorted(recs, key=lambda r: r["ts"])
    assert set(Counter(r["language"] for r in recs)) == {"it", "en", "id"}
    assert set(Counter(r["category"] for r in recs)) == {"greeting", "casual", "business"}
    hours = Counter(int(r["ts"][11:13]) for r in recs)
    assert hours[10] > 3 * hours[22]  # a daily pattern
    weekdays = Counter(datetime.fromisoformat(r["ts"][:10]).weekday() for r in recs)
    assert weekdays[2] > weekdays[6]  # quieter weekends
    errors = [r for r in recs if r["student"]["error"]]
    assert 0.005 < len(errors) / len(recs) < 0.05
    assert any("timeout" in r["student"]["error"] for r in errors)
    assert all(r["teacher"]["cost_usd"] > 0 for r in recs)

    def mean_sim(**where: str) -> float:
        s = [r["similarity"]["score"] for r in recs if r["similarity"]["score"] is not None
             and all(r[k] == v for k, v in where.items())]  # fmt: skip
        return sum(s) / len(s)

    assert mean_sim(category="greeting") > mean_sim(category="business") + 0.1
    assert mean_sim(language="en") > mean_sim(language="id") + 0.05


def test_build_fills_log_and_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    db.upgrade(url)
    summary = generate.build(
        url=url, log_dir=tmp_path / "logs", pairs=3000, days=20, seed=2, end=END
    )
    assert summary.pairs == 3000 and summary.compacted_days >= 19
    with db.session_scope(url) as s:
        assert s.exec(select(func.count()).select_from(User)).one() == len(generate.DEMO_ACCOUNTS)
        reviewers = s.exec(select(Review.reviewer_id).distinct()).all()
        assert len(reviewers) == 3
        assert s.exec(select(func.count()).select_from(Review)).one() == summary.reviews > 200
        open_items = s.exec(select(func.count()).where(ReviewItem.status == "open")).one()
        assert open_items > 50  # work left in the queue
        assert s.exec(select(Budget)).one().monthly_usd == summary.budget_usd

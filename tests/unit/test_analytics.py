"""Analytics (the facts table, filters, time zones, the cache), the quality queries and the
budget and review-score stores, on the five-pair log whose answers are worked out by hand
(``FIXTURE`` in tests/support/handlog.py; the ``log_dir`` and ``con`` fixtures are in
tests/unit/conftest.py). Spend queries: test_spend.py; budget maths: test_budget.py."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from shadowtutor.auth import PermissionDenied
from shadowtutor.dashboards import budget, quality, spend
from shadowtutor.log import analytics, compaction, read, write
from shadowtutor.log.analytics import Filters
from shadowtutor.log.errors import LogReadError, TimezoneError
from shadowtutor.tables import Budget, Review, ReviewItem, User
from tests.support.handlog import ALL
from tests.support.handlog import record as _record


def test_filter_options(con) -> None:
    opts = analytics.filter_options(con)
    assert opts.models == ["gpt-4o", "gpt-4o-mini", "llama3", "mystery-model"]
    assert opts.categories == ["business", "casual", "greeting"]
    assert opts.sources == ["live", "replay"]
    assert (opts.first_day, opts.last_day, opts.pairs) == (date(2026, 1, 10), date(2026, 1, 12), 5)


def test_days_follow_the_display_time_zone(log_dir: Path) -> None:
    # Tokyo is UTC+9: p4 (23:30 UTC on the 11th) falls on the 12th.
    df = spend.spend_by_day(analytics.connect(log_dir, "Asia/Tokyo"), ALL)
    assert df["pairs"].tolist() == [2, 1, 2]
    assert df["teacher_usd"].tolist() == pytest.approx([3.0, 0.5, 3.0])


def test_unknown_time_zone_is_a_clear_error(log_dir: Path) -> None:
    with pytest.raises(TimezoneError, match="SHADOWTUTOR_TIMEZONE"):
        analytics.connect(log_dir, "Mars/Olympus")


@pytest.mark.parametrize(
    ("f", "pairs", "spent"),
    [
        (ALL, 5, 6.5),
        (Filters(categories=("business",)), 2, 5.0),
        (Filters(languages=("de",)), 2, 2.5),
        (Filters(sources=("replay",)), 1, 3.0),
        (Filters(models=("mystery-model",)), 1, 0.0),
        (Filters(models=("llama3",)), 5, 6.5),  # the student of every pair
        (Filters(start=date(2026, 1, 11), end=date(2026, 1, 11)), 2, 0.5),
        (Filters(start=date(2026, 1, 12)), 1, 3.0),
        (Filters(end=date(2026, 1, 9)), 0, 0.0),
    ],
)
def test_filters(con, f: Filters, pairs: int, spent: float) -> None:
    assert analytics.count_pairs(con, f) == pairs
    assert spend.spend_by_day(con, f)["teacher_usd"].sum() == pytest.approx(spent)


# --- quality ------------------------------------------------------------------------------


def test_latency_percentiles(con) -> None:
    df = quality.latency_by_day(con, Filters(start=date(2026, 1, 10), end=date(2026, 1, 10)))
    teacher = df[df["who"] == "teacher"].iloc[0]
    assert (teacher["p50"], teacher["p95"], teacher["p99"]) == pytest.approx((150, 195, 199))
    whole = quality.side_by_side(con, ALL, method="lexical", flat_monthly_usd=30.0)
    t, s = whole.iloc[0], whole.iloc[1]
    # teacher 100..500: P50 300, P95 400 + 0.8 x 100 = 480; student ok calls 50, 150, 250
    assert (t["p50_ms"], t["p95_ms"]) == pytest.approx((300, 480))
    assert (s["p50_ms"], s["p95_ms"]) == pytest.approx((150, 240))
    assert (t["requests"], s["requests"]) == (5, 5)
    assert t["cost_per_1k_usd"] == pytest.approx(6.5 / 5 * 1000)
    # 0.01 logged + $30/month x 3 days / 30
    assert s["cost_per_1k_usd"] == pytest.approx((0.01 + 3.0) / 5 * 1000)
    assert (t["error_rate"], s["error_rate"]) == pytest.approx((0.0, 0.4))
    assert s["mean_similarity"] == pytest.approx(0.7)
    assert math.isnan(t["mean_similarity"]) or t["mean_similarity"] is None


def test_student_failures(con) -> None:
    df = quality.student_failures_by_day(con, ALL)
    day11 = df[[d.day == 11 for d in df["day"]]].iloc[0]
    assert (day11["attempts"], day11["errors"], day11["timeouts"]) == (2, 1, 1)
    assert (day11["error_rate"], day11["timeout_rate"]) == pytest.approx((0.5, 0.5))
    assert df["attempts"].sum() == 5


def test_similarity(con) -> None:
    methods = quality.similarity_methods(con, ALL)
    assert methods.to_dict("records") == [{"method": "lexical", "pairs": 3}]
    hist = quality.similarity_histogram(con, ALL, "lexical", bins=10)
    assert len(hist) == 10
    assert hist["pairs"].tolist() == [0, 0, 0, 0, 0, 1, 0, 1, 0, 1]
    by_day = quality.similarity_by_day(con, ALL, "lexical", 0.6)
    assert by_day["mean"].tolist() == pytest.approx([0.7, 0.7])
    assert by_day["share_above"].tolist() == pytest.approx([0.5, 1.0])
    # day 1 scores 0.5 and 0.9: P10 = 0.5 + 0.1 x 0.4; day 2 one score 0.7
    assert by_day["p10"].tolist() == pytest.approx([0.54, 0.7])
    assert by_day["median"].tolist() == pytest.approx([0.7, 0.7])
    by_lang = quality.similarity_by(con, ALL, "lexical", "language", 0.6)
    assert by_lang.set_index("value")["mean"].to_dict() == pytest.approx({"en": 0.8, "de": 0.5})
    assert quality.similarity_histogram(con, ALL, "openai").empty


def test_empty_log(tmp_path: Path) -> None:
    con = analytics.connect(tmp_path / "nothing", "UTC")
    assert analytics.filter_options(con).pairs == 0
    assert spend.spend_by_day(con, ALL).empty
    assert quality.latency_by_day(con, ALL).empty
    assert spend.top_prompts(con, ALL).empty
    w = spend.spend_windows(con, datetime(2026, 1, 1))
    assert (w.month_to_date, w.first_pair) == (0.0, None)
    s = spend.savings_inputs(con, ALL, {"casual"})
    assert (s.days, s.requests, s.teacher_usd, s.student_usd) == (0, 0, 0.0, 0.0)
    table = quality.side_by_side(con, ALL)
    assert table["requests"].tolist() == [0, 0]
    assert table["cost_per_1k_usd"].isna().all()


def test_cache_follows_new_removed_and_compacted_files(log_dir: Path) -> None:
    assert analytics.count_pairs(analytics.connect(log_dir), ALL) == 5
    with write.LogWriter(log_dir) as writer:
        writer.append(_record(("p6", "2026-01-12T13:00Z", "gpt-4o", 4.0, "casual", "en",
                               "live", 100, 10, 0.0, None, 0.8)))  # fmt: skip
    con = analytics.connect(log_dir)
    assert analytics.count_pairs(con, ALL) == 6
    compaction.compact(log_dir, today=date(2026, 2, 1))
    assert read.jsonl_files(log_dir) == []
    con = analytics.connect(log_dir)
    assert analytics.count_pairs(con, ALL) == 6
    assert spend.spend_by_day(con, ALL)["teacher_usd"].sum() == pytest.approx(10.5)
    assert spend.top_prompts(con, ALL, limit=1)["prompt"].tolist() == ["ask p6"]


def test_unreadable_file_is_a_clear_error(log_dir: Path) -> None:
    bad = log_dir / "parquet" / "date=2026-01-01" / "part-broken.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(LogReadError, match="part-broken.parquet"):
        analytics.connect(log_dir)
    bad.unlink()
    assert analytics.count_pairs(analytics.connect(log_dir), ALL) == 5


def test_headline(con) -> None:
    h = analytics.headline(con, datetime(2026, 1, 13, 9, 0, tzinfo=UTC))
    assert h.pairs_7d == 5
    assert h.teacher_spend_mtd == pytest.approx(6.5)
    assert h.mean_similarity_7d == pytest.approx(0.7)
    assert h.student_error_rate_7d == pytest.approx(0.4)
    assert h.student_p95_ms_7d == pytest.approx(240)


# --- stores (SQLite and PostgreSQL) -------------------------------------------------------


def _user(session, role: str = "admin") -> User:
    user = User(username=f"{role}-x", role=role, password_hash="x")
    session.add(user)
    session.flush()
    return user


def test_budget_store_newest_applies_and_only_admins_set(session) -> None:
    admin, manager = _user(session), _user(session, "manager")
    assert budget.current_budget(session=session) is None
    budget.set_budget(session=session, monthly_usd=500, actor_id=admin.id)
    budget.set_budget(session=session, monthly_usd=750, actor_id=admin.id)
    assert budget.current_budget(session=session).monthly_usd == 750
    with pytest.raises(PermissionDenied, match="only admins may set the monthly budget"):
        budget.set_budget(session=session, monthly_usd=1, actor_id=manager.id)
    with pytest.raises(budget.BudgetError, match="more than"):
        budget.set_budget(session=session, monthly_usd=0, actor_id=admin.id)
    assert len(session.exec(__import__("sqlmodel").select(Budget)).all()) == 2


def test_review_scores(session) -> None:
    user = _user(session, "reviewer")
    items = []
    for pid, day, cat, lang in (("a", 10, "greeting", "en"), ("b", 12, "business", "de")):
        item = ReviewItem(
            pair_id=pid, pair_ts=datetime(2026, 1, day, tzinfo=UTC), category=cat, language=lang
        )
        session.add(item)
        session.flush()
        items.append(item)
    old = Review(item_id=items[0].id, pair_id="a", reviewer_id=user.id, student_score=1,
                 teacher_score=1, decision="approve", is_current=False)  # fmt: skip
    session.add(old)
    session.flush()
    for item, s, t in ((items[0], 4, 5), (items[1], 2, 4)):
        session.add(Review(item_id=item.id, pair_id=item.pair_id, reviewer_id=user.id,
                           student_score=s, teacher_score=t, decision="approve"))  # fmt: skip
    session.flush()
    all_ = quality.review_scores(session=session)
    assert (all_.student_mean, all_.teacher_mean, all_.reviews) == (3.0, 4.5, 2)
    de = quality.review_scores(session=session, languages=("de",))
    assert (de.student_mean, de.reviews) == (2.0, 1)
    start, end = analytics.utc_bounds(
        Filters(start=date(2026, 1, 10), end=date(2026, 1, 10)), "UTC"
    )
    day10 = quality.review_scores(session=session, start=start, end=end)
    assert (day10.student_mean, day10.teacher_mean) == (4.0, 5.0)
    none = quality.review_scores(session=session, categories=("casual",))
    assert (none.student_mean, none.reviews) == (None, 0)


def _restart() -> None:
    """What a new dashboard process starts with: no table in memory."""
    with analytics._STORES_LOCK:
        analytics._STORES.clear()


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The files each refresh reads into the table."""
    seen: list[list[str]] = []
    real = analytics._Store._apply

    def spy(self, con, stale, fresh, current):  # noqa: ANN001, ANN202
        seen.append(sorted(fresh))
        return real(self, con, stale, fresh, current)

    monkeypatch.setattr(analytics._Store, "_apply", spy)
    return seen


def test_a_restarted_dashboard_reads_only_what_changed_from_its_cache_file(
    log_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    reads = _reads(monkeypatch)
    assert analytics.count_pairs(analytics.connect(log_dir, cache_dir=cache), ALL) == 5
    assert len(reads) == 1 and len(list(cache.glob("facts-*.duckdb"))) == 1
    _restart()
    con = analytics.connect(log_dir, cache_dir=cache)
    assert len(reads) == 1  # nothing changed: nothing read again
    assert analytics.count_pairs(con, ALL) == 5
    assert analytics.filter_options(con).models == [
        "gpt-4o", "gpt-4o-mini", "llama3", "mystery-model"
    ]  # fmt: skip
    assert spend.spend_by_day(con, ALL)["teacher_usd"].sum() == pytest.approx(6.5)
    con.close()
    _restart()
    with write.LogWriter(log_dir) as writer:  # while it was down: a new file ...
        writer.append(_record(("p6", "2026-01-12T13:00Z", "gpt-4o", 4.0, "casual", "en",
                               "live", 100, 10, 0.0, None, 0.8)))  # fmt: skip
    compaction.compact(log_dir, today=date(2026, 1, 12))  # ... and files replaced by Parquet
    con = analytics.connect(log_dir, cache_dir=cache)
    assert analytics.count_pairs(con, ALL) == 6
    assert spend.spend_by_day(con, ALL)["teacher_usd"].sum() == pytest.approx(10.5)
    assert all(not f.endswith(".jsonl") or "2026-01-12" in f for f in reads[-1])  # only new
    assert len(reads) == 2


def test_a_damaged_cache_file_is_rebuilt_and_an_old_version_removed(
    log_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    analytics.connect(log_dir, cache_dir=cache).close()
    [made] = list(cache.glob("facts-*.duckdb"))
    _restart()
    made.write_bytes(b"this is not a DuckDB database" * 100)
    older = made.with_name(made.name.rsplit("-", 1)[0] + "-0123456789.duckdb")
    older.write_bytes(b"a cache made by another version")
    con = analytics.connect(log_dir, cache_dir=cache)
    assert analytics.count_pairs(con, ALL) == 5
    assert not older.exists() and made.exists()


def test_a_cache_file_held_by_another_process_falls_back_to_memory(
    log_dir: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    cache = tmp_path / "cache"
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from shadowtutor.log import analytics\n"
            f"analytics.connect({str(log_dir)!r}, cache_dir={str(cache)!r})\n"
            "print('holding', flush=True)\n"
            "time.sleep(60)\n"
        )],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"holding"
        con = analytics.connect(log_dir, cache_dir=cache)
        assert analytics.count_pairs(con, ALL) == 5
        assert analytics._store(log_dir, "UTC", cache).path is None  # in memory
    finally:
        holder.kill()
        holder.wait(10)

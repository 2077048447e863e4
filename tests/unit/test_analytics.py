"""Analytics, projection, budget and savings on a five-pair log whose answers are worked out
by hand (see the table in ``FIXTURE``)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from shadowtutor import pricing
from shadowtutor.auth import PermissionDenied
from shadowtutor.dashboards import budget, quality, spend
from shadowtutor.log import analytics
from shadowtutor.log import record as logrecord
from shadowtutor.log import store as logstore
from shadowtutor.log.analytics import Filters
from shadowtutor.tables import Budget, Review, ReviewItem, RolloutEvent, User

# id, ts (UTC), teacher model, teacher cost, category, language, source, teacher ms,
# student ms, student cost, student error, similarity
FIXTURE = [
    ("p1", "2026-01-10T09:00Z", "gpt-4o", 1.00, "greeting", "en", "live", 100, 50, 0.01, None, 0.9),
    ("p2", "2026-01-10T10:00Z", "gpt-4o", 2.00, "business", "de", "live", 200, 150, 0.0, None, 0.5),
    ("p3", "2026-01-11T09:30Z", "gpt-4o-mini", 0.50, "greeting", "de", "live", 300, None, None,
     "student timed out after 10 s", None),
    ("p4", "2026-01-11T23:30Z", "mystery-model", None, "casual", "en", "live", 400, None, None,
     "HTTP 500 from student", None),
    ("p5", "2026-01-12T12:00Z", "gpt-4o", 3.00, "business", "en", "replay", 500, 250, 0.0, None,
     0.7),
]  # fmt: skip
ALL = Filters()


def _record(row: tuple) -> dict:
    pid, ts, model, cost, cat, lang, source, t_ms, s_ms, s_cost, s_err, sim = row
    return logrecord.make_record(
        id=pid,
        ts=logrecord.parse_ts(ts),
        source=source,
        category=cat,
        language=lang,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"ask {pid}"},
        ],
        teacher={"model": model, "response": "answer", "latency_ms": t_ms, "cost_usd": cost},
        student={
            "model": "llama3",
            "response": None if s_err else "student answer",
            "latency_ms": s_ms,
            "cost_usd": s_cost,
            "error": s_err,
        },
        similarity={"method": "lexical", "score": sim} if sim is not None else None,
    )


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    with logstore.LogWriter(folder) as writer:
        writer.append_many(_record(r) for r in FIXTURE)
    return folder


@pytest.fixture
def con(log_dir: Path):
    return analytics.connect(log_dir, "UTC")


def test_filter_options(con) -> None:
    opts = analytics.filter_options(con)
    assert opts.models == ["gpt-4o", "gpt-4o-mini", "llama3", "mystery-model"]
    assert opts.categories == ["business", "casual", "greeting"]
    assert opts.sources == ["live", "replay"]
    assert (opts.first_day, opts.last_day, opts.pairs) == (date(2026, 1, 10), date(2026, 1, 12), 5)


def test_spend_by_day(con) -> None:
    df = spend.spend_by_day(con, ALL)
    assert [d.day for d in df["day"]] == [10, 11, 12]
    assert df["teacher_usd"].tolist() == pytest.approx([3.0, 0.5, 3.0])
    assert df["pairs"].tolist() == [2, 2, 1]
    assert df["priced"].tolist() == [2, 1, 1]  # p4's model is unknown


def test_days_follow_the_display_time_zone(log_dir: Path) -> None:
    # Tokyo is UTC+9: p4 (23:30 UTC on the 11th) falls on the 12th.
    df = spend.spend_by_day(analytics.connect(log_dir, "Asia/Tokyo"), ALL)
    assert df["pairs"].tolist() == [2, 1, 2]
    assert df["teacher_usd"].tolist() == pytest.approx([3.0, 0.5, 3.0])


def test_unknown_time_zone_is_a_clear_error(log_dir: Path) -> None:
    with pytest.raises(analytics.TimezoneError, match="SHADOWTUTOR_TIMEZONE"):
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
    with logstore.LogWriter(log_dir) as writer:
        writer.append(_record(("p6", "2026-01-12T13:00Z", "gpt-4o", 4.0, "casual", "en",
                               "live", 100, 10, 0.0, None, 0.8)))  # fmt: skip
    con = analytics.connect(log_dir)
    assert analytics.count_pairs(con, ALL) == 6
    logstore.compact(log_dir, today=date(2026, 2, 1))
    assert logstore.jsonl_files(log_dir) == []
    con = analytics.connect(log_dir)
    assert analytics.count_pairs(con, ALL) == 6
    assert spend.spend_by_day(con, ALL)["teacher_usd"].sum() == pytest.approx(10.5)
    assert spend.top_prompts(con, ALL, limit=1)["prompt"].tolist() == ["ask p6"]


def test_unreadable_file_is_a_clear_error(log_dir: Path) -> None:
    bad = log_dir / "parquet" / "date=2026-01-01" / "part-broken.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(analytics.LogReadError, match="part-broken.parquet"):
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


# --- pure maths ---------------------------------------------------------------------------


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


def test_current_stage(session) -> None:
    assert budget.current_stage(session=session) == 0
    t = datetime(2026, 1, 1, tzinfo=UTC)
    session.add(RolloutEvent(action="advance", stage=10, created_at=t))
    session.add(RolloutEvent(action="advance", stage=25, created_at=t.replace(day=2)))
    session.flush()
    assert budget.current_stage(session=session) == 25
    session.add(RolloutEvent(action="kill", stage=25, killed=True, created_at=t.replace(day=3)))
    session.flush()
    assert budget.current_stage(session=session) == 0


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

"""Leaderboard arithmetic over plain rows: shared prompts only, bounds on every metric, paired
differences with a 95% interval (a tie called a tie), the gate verdict, the learning curve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from shadowtutor.students import leaderboard
from shadowtutor.students.registry import StudentSpec
from tests.support.gatecases import config

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def rows(spec: dict[str, dict], n: int = 200, seed: int = 1) -> pd.DataFrame:
    """``n`` requests; per student: success probability, similarity and review score means."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base = rng.normal(0, 0.1)  # the prompt's own difficulty: shared by every student
        for name, p in spec.items():
            if p.get("skip_every") and i % p["skip_every"] == 0:
                continue
            out.append(
                {
                    "request_id": f"r{i}",
                    "student_name": name,
                    "id": f"{name}-{i}",
                    "ts": T0 + timedelta(hours=i),
                    "category": "greeting",
                    "student_model": name,
                    "ok": bool(rng.random() < p["ok"]),
                    "student_latency_ms": float(rng.gamma(4, p.get("ms", 100))),
                    "similarity": float(np.clip(p["sim"] + base + rng.normal(0, 0.05), 0, 1)),
                    "student_cost_usd": 0.0,
                    "review": float(np.clip(round(p["score"] + rng.normal(0, 0.7)), 1, 5))
                    if i % 2 == 0
                    else None,
                    "judge": float(np.clip(p["score"] + base + rng.normal(0, 0.3), 1, 5)),
                }
            )
    return pd.DataFrame(out)


def spec(name: str, **kw) -> StudentSpec:
    return StudentSpec(name, "ollama", "", name, 5.0, **kw)


def test_paired_difference_finds_the_better_student() -> None:
    df = rows(
        {"v1": {"ok": 0.9, "sim": 0.6, "score": 3.5}, "v2": {"ok": 0.99, "sim": 0.75, "score": 4.3}}
    )
    by = {d.metric: d for d in leaderboard.paired_differences(df, "v2", "v1")}
    assert by["similarity"].verdict == "v2 better" and by["similarity"].lower > 0
    assert by["judge score"].verdict == "v2 better"
    assert by["similarity"].n == 200


def test_equal_students_are_a_tie() -> None:
    df = rows(
        {"a": {"ok": 0.95, "sim": 0.7, "score": 4.0}, "b": {"ok": 0.95, "sim": 0.7, "score": 4.0}}
    )
    for d in leaderboard.paired_differences(df, "a", "b"):
        assert d.verdict == "tie", d
        assert d.lower <= 0 <= d.upper


def test_latency_lower_is_better() -> None:
    df = rows(
        {
            "fast": {"ok": 1, "sim": 0.7, "score": 4, "ms": 50},
            "slow": {"ok": 1, "sim": 0.7, "score": 4, "ms": 400},
        }
    )
    (lat,) = [
        d for d in leaderboard.paired_differences(df, "fast", "slow") if d.metric == "latency ms"
    ]
    assert lat.verdict == "fast better" and lat.upper < 0


def test_only_shared_prompts_count() -> None:
    df = rows(
        {
            "a": {"ok": 1, "sim": 0.7, "score": 4},
            "b": {"ok": 1, "sim": 0.7, "score": 4, "skip_every": 4},
        }
    )
    assert leaderboard.shared(df, ["a", "b"])["request_id"].nunique() == 150
    board = leaderboard.standings(
        df, [spec("a"), spec("b")], config(criteria__min_reviews=50), days=8
    )
    assert {s.success.n for s in board} == {150}


@pytest.mark.parametrize(
    ("min_reviews", "expected"),
    [(500, "needs 400 more reviews"), (50, "would pass the gate now")],
)
def test_gate_verdict(min_reviews: int, expected: str) -> None:
    df = rows({"good": {"ok": 1.0, "sim": 0.8, "score": 4.8, "ms": 50}})
    cfg = config(
        criteria__min_reviews=min_reviews,
        criteria__min_review_score=4.0,
        criteria__min_success_rate=0.9,
    )
    (s,) = leaderboard.standings(df, [spec("good")], cfg, days=8)
    assert s.verdict == expected
    assert s.success.lower <= s.success.value <= s.success.upper
    assert s.review.lower < s.review.value < s.review.upper and s.review.n == 100
    assert s.p95_ms.lower <= s.p95_ms.value <= s.p95_ms.upper


def test_ranking_and_frame() -> None:
    df = rows(
        {
            "weak": {"ok": 0.8, "sim": 0.5, "score": 3.0},
            "strong": {"ok": 1, "sim": 0.8, "score": 4.6},
        }
    )
    board = leaderboard.standings(
        df, [spec("weak"), spec("strong", monthly_cost_usd=40)], config(), days=8
    )
    assert [s.name for s in board] == ["strong", "weak"]
    assert board[0].projected_monthly_usd == 40
    frame = leaderboard.standings_frame(board)
    assert list(frame["student"]) == ["strong", "weak"] and "[" in frame.loc[0, "similarity"]


def test_learning_curve_accumulates_per_version() -> None:
    df = rows(
        {
            "qwen": {"ok": 0.9, "sim": 0.6, "score": 3.5},
            "qwen-v2": {"ok": 1, "sim": 0.8, "score": 4.5},
        },
        n=72,
    )
    specs = [spec("qwen", version="v1"), spec("qwen-v2", version="v2", trained_on="ab12cd34")]
    curve = leaderboard.learning_curve(df, specs)
    assert set(curve["student"]) == {"qwen · v1", "qwen-v2 · v2 · trained on ab12cd34"}
    sim = curve[(curve["metric"] == "similarity") & (curve["student"].str.startswith("qwen-v2"))]
    assert list(sim["n"]) == [24, 48, 72]  # three days, cumulative

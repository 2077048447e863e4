"""Simulated gate windows from a student of known quality (plain data), and a small real
log with reviews for page and CLI tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from core import db, logrecord, logstore
from core.config import Settings
from core.gate import Aggregate, Window, similarity_bins
from core.models import Review, ReviewItem
from tests.apputil import make_user


@dataclass(frozen=True)
class Student:
    success: float  # probability that a request is answered without an error
    latency_median_ms: float
    latency_sigma: float  # log-normal spread
    similarity_mean: float  # mean similarity to the teacher (beta distributed)
    score_probs: tuple[float, float, float, float, float]  # P(score = 1..5)

    @property
    def mean_score(self) -> float:
        return float(np.dot(self.score_probs, [1, 2, 3, 4, 5]))

    @property
    def p95_ms(self) -> float:
        return float(self.latency_median_ms * np.exp(1.6448536 * self.latency_sigma))


def window(
    student: Student,
    rng: np.random.Generator,
    *,
    pairs: int,
    reviews: int,
    category: str = "greeting",
    method: str = "lexical",
) -> Window:
    ok = int(rng.binomial(pairs, student.success))
    lat = rng.lognormal(np.log(student.latency_median_ms), student.latency_sigma, size=ok)
    k = 20.0  # beta concentration
    sims = rng.beta(student.similarity_mean * k, (1 - student.similarity_mean) * k, size=ok)
    draws = rng.multinomial(reviews, student.score_probs)
    agg = Aggregate(
        pairs=pairs,
        successes=ok,
        latencies_ms=lat.tolist(),
        similarity=similarity_bins(method, sims.tolist()),
        scores={s: int(c) for s, c in zip(range(1, 6), draws, strict=True) if c},
    )
    return Window(None, None, {category: agg})


def fill(settings: Settings, *, failures: int = 0) -> None:
    """1,200 greeting pairs in the last days and 120 good reviews of them."""
    now = datetime.now(UTC)
    rng = np.random.default_rng(0)
    records = [
        logrecord.make_record(
            messages=[{"role": "user", "content": f"ciao {i}"}],
            teacher={"model": "gpt-4o", "response": "Ciao! Come posso aiutarti?"},
            student={
                "model": "llama3",
                "response": None if i < failures else "Ciao! Come posso aiutarti oggi?",
                "latency_ms": float(rng.lognormal(6, 0.3)),
                "error": "HTTP 500" if i < failures else None,
            },
            ts=now - timedelta(hours=1 + i % 100),
            category="greeting",
            user_hash=f"u{i}",
            similarity={"method": "lexical", "score": 0.7},
        )
        for i in range(1200)
    ]
    with logstore.LogWriter(settings.log_path) as w:
        w.append_many(records)
    reviewer = make_user(settings.db_url, "reviewer")
    with db.session_scope(settings.db_url) as s:
        for i, rec in enumerate(records[:120]):
            item = ReviewItem(
                pair_id=rec["id"],
                category="greeting",
                similarity=0.7,
                pair_ts=now - timedelta(hours=2),
                snapshot={"similarity_method": "lexical"},
            )
            s.add(item)
            s.flush()
            s.add(
                Review(
                    item_id=item.id,
                    pair_id=item.pair_id,
                    reviewer_id=reviewer,
                    student_score=5 if i % 3 else 4,
                    decision="approve",
                )
            )

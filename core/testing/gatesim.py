"""Simulated gate windows from a student of known quality (plain data): used by the gate's
coverage tests and by ``bench/gate_simulation.py``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shadowtutor.gate.criteria import Aggregate, Window, similarity_bins


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

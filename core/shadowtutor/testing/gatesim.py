"""Simulated gate windows from a student of known quality (plain data): used by the gate's
coverage tests and by ``bench/gate_simulation.py``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shadowtutor.gate.criteria import Aggregate, RatingKey, Window, similarity_bins
from shadowtutor.review import pick


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


# --- daily streams with a judge (daily looks over rolling windows) -------------------------


@dataclass(frozen=True)
class Judge:
    """A simulated LLM judge: each answer order gives the human score plus normal noise
    (``noise`` points, rounded, clipped to 1..5) and a ``bias``; ``random`` ignores the answer
    altogether (uniform 1..5). The judge's score is the mean over the two orders."""

    noise: float = 0.5
    bias: float = 0.0
    random: bool = False

    def one_order(self, human: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.random:
            return rng.integers(1, 6, size=len(human)).astype(float)
        raw = human + self.bias + rng.normal(0, self.noise, size=len(human))
        clipped: np.ndarray = np.clip(np.rint(raw), 1, 5)
        return clipped

    def orders(self, human: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The student's score in each answer order."""
        return self.one_order(human, rng), self.one_order(human, rng)

    def score(self, human: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        first, second = self.orders(human, rng)
        mean: np.ndarray = (first + second) / 2
        return mean


def day(
    student: Student,
    rng: np.random.Generator,
    *,
    pairs: int,
    reviews: int,
    judge: Judge | None = None,
    method: str = "lexical",
    judge_rng: np.random.Generator | None = None,
    queue: str = "random",
) -> Aggregate:
    """One day of one category: ``pairs`` pairs, ``reviews`` of them (a uniform random
    sample) reviewed by people, and every pair scored by ``judge`` when given (stored apart
    from the human scores).

    The log, the human scores and the reviewed sample come from ``rng`` alone, whatever the
    judge; the judge's noise comes from ``judge_rng`` (default: ``rng``, after the rest). So
    runs with one seed and different judges see the same pairs and the same reviews (common
    random numbers), and a comparison of judges measures the estimator, not the luck of the
    draw.

    ``queue="judge_unsure"`` (with a judge) picks the reviewed pairs as the review queue's
    ``judge_unsure`` strategy does (``shadowtutor.review.pick``: more of the pairs whose two
    answer orders disagree, exact inclusion probabilities), and each review carries its design
    weight in ``ratings`` as the gate's evidence does."""
    agg = window(student, rng, pairs=pairs, reviews=0, method=method).categories["greeting"]
    human = rng.choice(np.arange(1, 6), size=pairs, p=student.score_probs).astype(float)
    reviewed = np.zeros(pairs, dtype=bool)
    reviewed[rng.choice(pairs, size=min(reviews, pairs), replace=False)] = True
    for h in human[reviewed]:
        agg.scores[int(h)] = agg.scores.get(int(h), 0) + 1
    if judge is None:
        return agg
    first, second = judge.orders(human, rng if judge_rng is None else judge_rng)
    scored = (first + second) / 2
    weights = np.ones(pairs)
    if queue == "judge_unsure":
        rows = [
            {"id": f"{i:06d}", "judge_student": float(f), "judge_spread": abs(float(a - b))}
            for i, (f, a, b) in enumerate(zip(scored, first, second, strict=True))
        ]
        chosen = pick.select_ids(
            rows,
            strategy="judge_unsure",
            size=min(reviews, pairs),
            seed=int(rng.integers(2**31)),
        )
        design = pick.design_weights(rows, min(reviews, pairs))
        for h in human[reviewed]:  # the uniform draw's reviews: replaced by the weighted ones
            agg.scores[int(h)] -= 1
        reviewed[:] = False
        for i in chosen:
            reviewed[int(i)] = True
            weights[int(i)] = design[i]
            agg.scores[int(human[int(i)])] = agg.scores.get(int(human[int(i)]), 0) + 1
        agg.scores = {k: v for k, v in agg.scores.items() if v}
    for h, f, r, w in zip(human, scored, reviewed, weights, strict=True):
        key: RatingKey = (int(h) if r else None, None, float(f), None)
        if r and w != 1.0:
            key = (*key, round(float(w), 6))
        agg.ratings[key] = agg.ratings.get(key, 0) + 1
    return agg


def rolling_window(
    days: list[Aggregate], end: int, *, window_days: int, review_window_days: int
) -> Window:
    """The gate's window on day ``end`` (0-based, inclusive): log figures of the last
    ``window_days`` days, reviews and judge scores of the last ``review_window_days``."""
    total = Aggregate()
    for i in range(max(0, end - window_days + 1), end + 1):
        d = days[i]
        total.pairs += d.pairs
        total.successes += d.successes
        total.latencies_ms.extend(d.latencies_ms)
        total.add(Aggregate(similarity=d.similarity))
    for i in range(max(0, end - review_window_days + 1), end + 1):
        total.add(Aggregate(scores=days[i].scores, ratings=days[i].ratings))
    return Window(None, None, {"greeting": total})

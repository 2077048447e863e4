"""How fast can any exact, anytime-valid review bound pass a student at 4.2 against a 4.0 bar?

The arithmetic behind the docs' "GO within 14 days" (8 human reviews a day, the family's
alpha for one student and one category in its first epoch, 4 %). A test martingale (what
every anytime bound here is made of) against "mean <= 4" on scores in 1..5 grows, for a
student whose scores have distribution P, by at most KL_inf(P) per review in expectation:
the best constant bet known in advance (the Kelly bet). Reaching 1/alpha takes
log(1/alpha) / KL_inf reviews on average; the simulation gives the median days of the
Kelly bet that knows P (no real bound can do better on average), of the gate's mixture of
bets (``stats.log_capital``, the function its bounds use) and the share of runs passing
by day 14. Also KL_inf of the rectified scores ``y - lambda * f`` of a kappa-0.8 judge
(judge mean known exactly: the best any judge-assisted bet on a uniform queue can do).

    .venv/bin/python bench/review_speed.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from shadowtutor.gate import criteria, stats
from shadowtutor.testing.gatesim import Judge

CLOSE = np.array([0.02, 0.04, 0.10, 0.40, 0.44])  # mean 4.20
SCALE = np.arange(1.0, 6.0)
PER_DAY, BAR = 8, 4.0


def kl_inf(values: np.ndarray, probs: np.ndarray, m: float, lo: float) -> tuple[float, float]:
    """(Kelly fraction of the largest safe bet, growth per sample) against "mean <= m"."""
    fracs = np.linspace(0.001, 0.999, 999)
    growth = np.log1p(fracs[:, None] * (values[None, :] - m) / (m - lo)) @ probs
    best = int(np.argmax(growth))
    return float(fracs[best]), float(growth[best])


def days_to_pass(counts: np.ndarray, fracs: np.ndarray, target: float) -> np.ndarray:
    """Per run, the first day the mixture of ``fracs`` bets reaches ``target`` (log)."""
    runs, days, _ = counts.shape
    flat = counts.reshape(runs * days, 5)
    first = np.full(runs, np.inf)
    for start in range(0, runs * days, 20_000):  # log_capital per (run, day), in chunks
        part = flat[start : start + 20_000]
        for row, c in enumerate(part):
            r, d = divmod(start + row, days)
            if first[r] <= d or d == 0:  # day 1: 8 reviews, under min_reviews (10)
                continue
            cap = stats.log_capital(SCALE, c, np.asarray([BAR]), 1.0, fracs=fracs)[0]
            if cap >= target:
                first[r] = d + 1
    return first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--days", type=int, default=45)
    args = parser.parse_args()
    conf, _ = criteria.error_budget(criteria.load_config(), 1, 1, 1)
    alpha = 1 - conf
    target = math.log(1 / alpha)
    kelly, kl = kl_inf(SCALE, CLOSE, BAR, 1.0)
    print(
        f"alpha {alpha:.3f} (one student, one category, first epoch): log(1/alpha) = {target:.2f}"
    )
    print(
        f"KL_inf(student at 4.20, mean <= 4.0) = {kl:.4f} nats a review "
        f"(Kelly fraction {kelly:.2f})"
    )
    print(
        f"reviews needed on average by the best possible bet: {target / kl:.0f} "
        f"= {target / kl / PER_DAY:.1f} days; 14 days = {14 * PER_DAY} reviews give "
        f"{14 * PER_DAY * kl:.2f} nats on average, {target:.2f} needed"
    )
    rng = np.random.default_rng(26)
    scores = rng.choice(5, size=(args.runs, PER_DAY * args.days), p=CLOSE)
    onehot = np.eye(5)[scores]
    counts = np.cumsum(onehot, axis=1)[:, PER_DAY - 1 :: PER_DAY, :]
    print("\n| bet | median days to PASS | P(PASS by day 14) |\n|---|---|---|")
    for name, fracs in (
        ("Kelly bet knowing the distribution (an oracle)", np.asarray([kelly])),
        ("the gate's mixture (stats.BET_FRACTIONS)", stats.BET_FRACTIONS),
    ):
        first = days_to_pass(counts, fracs, target)
        med = np.median(first)
        print(
            f"| {name} | {'never' if np.isinf(med) else f'{med:.0f}'} "
            f"| {np.mean(first <= 14):.0%} |",
            flush=True,
        )
    judge = Judge(noise=0.8)
    y = rng.choice(SCALE, size=400_000, p=CLOSE)
    f = judge.score(y, rng)
    print(
        "\n| judge-assisted (kappa-0.8 judge, its mean known) | KL_inf a review "
        "| reviews on average | vs people alone |"
    )
    print("|---|---|---|---|")
    for lam in (0.5, 0.75, 1.0):
        terms = y - lam * f
        vals, cnts = np.unique(terms, return_counts=True)
        _, g = kl_inf(vals, cnts / cnts.sum(), BAR - lam * float(f.mean()), 1 - 5 * lam)
        print(f"| lambda {lam} | {g:.4f} | {target / g:.0f} | {kl / g:.0%} |")


if __name__ == "__main__":
    main()

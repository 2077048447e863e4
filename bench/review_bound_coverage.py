"""Coverage of the review-score bounds for a student exactly at the bar (mean 4.0).

8 human reviews a day (and, for the judge-assisted bound, 150 judged pairs a day from a judge
with noise 0.6), the bound computed at 10 reviews and then every day. Prints, per score
distribution, the share of runs whose lower bound reached 4.0: at the single look at 10
reviews, ever over 45 looks for the old large-sample bound (``stats.ppi_mean``), the betting
bound (``rectified.human_bound``) and the judge-assisted one (``rectified.judged_bound``), and
ever over 365 looks for the betting bound (issue 26).

    .venv/bin/python bench/review_bound_coverage.py [--runs 200]
"""

from __future__ import annotations

import argparse

import numpy as np

from shadowtutor.gate import rectified, stats

SCALE = np.arange(1, 6)
DISTRIBUTIONS = {
    "skewed: 4s and 5s, 1 in 15 a 1": (1 / 15, 0, 0, 11 / 15, 3 / 15),
    "bimodal: 1 in 4 a 1, else 5": (0.25, 0, 0, 0, 0.75),
    "spread (2/5/14/49/30 %)": (0.02, 0.05, 0.14, 0.49, 0.30),
}


def crossed(probs: tuple[float, ...], rng: np.random.Generator) -> tuple[bool, ...]:
    """(at 10 reviews, old bound over 45 looks, betting over 45, with a judge over 45,
    betting over 365): whether the lower bound ever reached 4.0."""
    y = rng.choice(SCALE, size=8 * 365, p=probs)
    f = np.clip(np.rint(y + rng.normal(0, 0.6, len(y))), 1, 5)
    u = np.clip(np.rint(rng.choice(SCALE, size=150 * 45, p=probs) + rng.normal(0, 0.6, 6750)), 1, 5)
    c10 = np.bincount(y[:10], minlength=6)[1:]
    first = rectified.human_bound(SCALE, c10, lo=1, hi=5, confidence=0.95)
    at_ten = first is not None and first.lower >= 4
    old = new45 = judged = ever = False
    for d in range(1, 366):
        n = max(10, 8 * d)
        c = np.bincount(y[:n], minlength=6)[1:]
        got = rectified.human_bound(SCALE, c, lo=1, hi=5, confidence=0.95)
        ever = ever or (got is not None and got.lower >= 4)
        if d <= 45:
            new45 = ever
            o = stats.ppi_mean(SCALE, np.zeros(5), [], human_counts=c, lo=1, hi=5)
            old = old or (o is not None and o.lower >= 4)
            j = rectified.judged_bound(
                SCALE, c, (y[:n], f[:n], np.ones(n)), (u[: 150 * d], np.ones(150 * d)),
                lo=1, hi=5, confidence=0.95,
            )  # fmt: skip
            judged = judged or (j is not None and j.lower >= 4)
        elif ever:
            break
    return at_ten, old, new45, judged, ever


def year_crossings(probs: tuple[float, ...], runs: int, confidence: float, seed: int) -> int:
    """Runs (of ``runs``) whose human betting bound ever reached 4.0 over 365 daily looks at 8
    reviews a day, from the 10th review. The bound reaches 4.0 exactly when the betting
    capital against "mean <= 4" reaches 1/alpha (the bound is the smallest mean not rejected,
    and the capital falls as the mean rises), so each look costs one capital, not a bisection:
    thousands of year-long runs in seconds."""
    rng = np.random.default_rng(seed)
    target = np.log(1 / (1 - confidence))
    y = rng.choice(SCALE, size=(runs, 8 * 365), p=probs)
    onehot = (y[:, :, None] == SCALE[None, None, :]).astype(float)
    counts = np.cumsum(onehot, axis=1)[:, 7::8, :]  # (runs, 365 looks, 5): counts at each look
    growth = np.log1p(stats.BET_FRACTIONS[:, None] * ((SCALE - 4.0) / 3.0)[None, :])  # (G, 5)
    logs = counts @ growth.T  # (runs, looks, G)
    top = logs.max(axis=2)
    capital = top + np.log(np.exp(logs - top[:, :, None]).mean(axis=2))
    capital[:, :1] = -np.inf  # the first look has 8 reviews: under min_reviews (10)
    return int(np.any(capital >= target, axis=1).sum())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--year-runs",
        type=int,
        default=0,
        help="Only the year table: runs of 365 daily looks per distribution and budget share.",
    )
    args = parser.parse_args()
    if args.year_runs:
        print(
            "| score distribution (mean 4.0) | confidence of each bound "
            "| P(ever >= 4.0 over 365 looks) | 95 % upper bound |"
        )
        print("|---|---|---|---|")
        for name, probs in DISTRIBUTIONS.items():
            for conf, who in (
                (0.96, "one student (epoch 1: 4 %)"),
                (1 - 0.04 / 3, "three students (1.33 % each)"),
            ):
                hits = year_crossings(probs, args.year_runs, conf, seed=21)
                upper = stats.wilson_bounds(hits, args.year_runs)[1]
                print(
                    f"| {name} | {who} | {hits}/{args.year_runs} = "
                    f"{hits / args.year_runs:.2%} | {upper:.2%} |",
                    flush=True,
                )
        return
    print(
        "| score distribution (mean 4.0) | one look at 10 reviews | old bound, 45 looks "
        "| betting, 45 looks | with a judge, 45 looks | betting, 365 looks |"
    )
    print("|---|---|---|---|---|---|")
    for name, probs in DISTRIBUTIONS.items():
        rng = np.random.default_rng(11)
        hits = np.sum([crossed(probs, rng) for _ in range(args.runs)], axis=0) / args.runs
        print(f"| {name} | " + " | ".join(f"{h:.1%}" for h in hits) + " |", flush=True)


if __name__ == "__main__":
    main()

"""How often does the gate say GO for a student that should not get it, and how many human
reviews does a good student need?

Simulates windows (plain aggregates, as the gate sees them) for known students over many seeds
and runs the shipped criteria (core/shadowtutor/data/gate.toml, one candidate category) through the
project's own ``decide``.

1. One look per window (``--seeds``): the share of runs ending GO / NO-GO / NOT ENOUGH DATA.
2. Daily looks (``--daily-seeds``): 150 pairs and 8 human reviews a day, rolling windows
   (14 days of pairs, 30 of reviews), the gate evaluated every day for 45 days. Prints
   ``daily looks: <case>: P(any GO over 45 looks) = X%`` per edge case (a student exactly at a
   threshold, who must not get GO more than 5 % of the time however often the gate is looked
   at), and the days and human reviews a good student needs: without a judge, and with a
   judge of weighted kappa ~0.6, ~0.8 and a useless (random) one scoring every pair, and
   the kappa-0.8 and random judges with the reviews picked by the review queue's
   ``judge_unsure`` strategy (weighted by their design weights).

    .venv/bin/python bench/gate_simulation.py [--seeds 500] [--daily-seeds 200] [--days 45]

A year of daily looks (365, 600 pairs a day, several students, a criteria change):
``bench/gate_year.py``.
"""

from __future__ import annotations

import argparse
import math
import time
import tomllib

import numpy as np

from shadowtutor.gate import criteria, outcomes
from shadowtutor.judge.calibration import weighted_kappa
from shadowtutor.review import sampling
from shadowtutor.testing.gatesim import Judge, Student, day, rolling_window, window

GOOD_SCORES = (0.01, 0.02, 0.07, 0.30, 0.60)
AT_4 = (0.02, 0.05, 0.14, 0.49, 0.30)  # mean exactly 4.00
MEDIAN_AT_1500 = 1500 / math.exp(1.6448536 * 0.5)  # true P95 exactly 1,500 ms

S = Student
GOOD = S(0.995, 500, 0.5, 0.60, GOOD_SCORES)
# Good, but close to the bar: where human reviews are the binding constraint.
CLOSE = S(0.995, 500, 0.5, 0.60, (0.02, 0.04, 0.10, 0.40, 0.44))  # mean 4.20
CASES = [
    # (name, student, pairs, reviews)
    ("bad: review score 3.82", S(0.995, 500, 0.5, 0.6, (0.05, 0.08, 0.17, 0.4, 0.3)), 2000, 150),
    ("bad: 97% success", S(0.970, 500, 0.5, 0.60, GOOD_SCORES), 2000, 150),
    ("bad: P95 1.9 s", S(0.995, 850, 0.5, 0.60, GOOD_SCORES), 2000, 150),
    ("bad: similarity 0.40", S(0.995, 500, 0.5, 0.40, GOOD_SCORES), 2000, 150),
    ("edge: score exactly 4.0", S(0.995, 500, 0.5, 0.60, AT_4), 2000, 150),
    ("edge: success exactly 98%", S(0.980, 500, 0.5, 0.60, GOOD_SCORES), 2000, 150),
    ("edge: P95 exactly 1,500 ms", S(0.995, MEDIAN_AT_1500, 0.5, 0.6, GOOD_SCORES), 2000, 150),
    ("edge: similarity exactly 0.45", S(0.995, 500, 0.5, 0.45, GOOD_SCORES), 2000, 150),
    ("good, 400 pairs / 40 reviews", GOOD, 400, 40),
    ("good, 1,200 pairs / 120 reviews", GOOD, 1200, 120),
    ("good, 3,000 pairs / 300 reviews", GOOD, 3000, 300),
    (
        "A/A teacher vs teacher, 1,500/120",
        S(0.999, 600, 0.45, 0.7, (0, 0.01, 0.05, 0.34, 0.6)),
        1500,
        120,
    ),
]
# Daily looks: each edge student is good on every other criterion.
EDGES = [
    ("mean review score exactly 4.0", S(0.995, 500, 0.5, 0.60, AT_4), None),
    ("success rate exactly 98%", S(0.980, 500, 0.5, 0.60, GOOD_SCORES), None),
    ("P95 latency exactly 1,500 ms", S(0.995, MEDIAN_AT_1500, 0.5, 0.6, GOOD_SCORES), None),
    ("mean review score exactly 4.0, random judge", S(0.995, 500, 0.5, 0.60, AT_4), "random"),
    ("mean review score exactly 4.0, kappa-0.8 judge", S(0.995, 500, 0.5, 0.60, AT_4), "0.8"),
    (
        "mean review score exactly 4.0, kappa-0.8 judge, judge_unsure queue",
        S(0.995, 500, 0.5, 0.60, AT_4),
        "0.8 unsure",
    ),
]
JUDGES = {
    "no judge": None,
    "kappa ~0.6": Judge(noise=1.4),
    "kappa ~0.8": Judge(noise=0.8),
    "random judge": Judge(random=True),
}
# Judges whose reviews come from the review queue's judge_unsure strategy (weighted).
UNSURE = {
    "kappa ~0.8, judge_unsure queue": "kappa ~0.8",
    "random, judge_unsure queue": "random judge",
}
PAIRS_PER_DAY, REVIEWS_PER_DAY = 150, 8


def single_looks(cfg: criteria.GateConfig, seeds: int, only: str) -> None:
    print(f"\n## One look per window: {seeds} seeds per case, confidence {cfg.confidence}")
    print("| case | GO | NO-GO | NOT ENOUGH DATA |\n|---|---|---|---|")
    for name, student, pairs, reviews in CASES:
        if only not in name:
            continue
        counts = {criteria.GO: 0, criteria.NO_GO: 0, outcomes.INCONCLUSIVE: 0}
        for seed in range(seeds):
            w = window(student, np.random.default_rng(10_000 + seed), pairs=pairs, reviews=reviews)
            counts[criteria.decide(cfg, w, project=False).outcome] += 1
        go, no, wait = (
            counts[k] / seeds for k in (criteria.GO, criteria.NO_GO, outcomes.INCONCLUSIVE)
        )
        print(f"| {name} | {go:.1%} | {no:.1%} | {wait:.1%} |")


def run_days(
    cfg: criteria.GateConfig,
    student: Student,
    judge: Judge | None,
    seed: int,
    looks: int,
    queue: str = "random",
) -> tuple[int | None, int | None]:
    """(first day with GO, first day the review-score criterion passes), 1-based; None: never.

    One seed gives the same pairs and the same human reviews whatever the judge (common
    random numbers: the judge's noise has its own generator), so judges compare paired."""
    rng = np.random.default_rng(50_000 + seed)
    judge_rng = np.random.default_rng(90_000 + seed)
    days = []
    first_go = first_review = None
    for t in range(looks):
        days.append(
            day(
                student,
                rng,
                pairs=PAIRS_PER_DAY,
                reviews=REVIEWS_PER_DAY,
                judge=judge,
                judge_rng=judge_rng,
                queue=queue,
            )
        )
        # The evidence epoch's growing sample (the gate no longer slides a window).
        w = rolling_window(days, t, window_days=looks, review_window_days=looks)
        d = criteria.decide(cfg, w, project=False)
        if first_go is None and d.outcome == criteria.GO:
            first_go = t + 1
        review = next(c for c in d.criteria if c.key == "review_score")
        if first_review is None and review.status == outcomes.PASS:
            first_review = t + 1
        if first_go is not None and first_review is not None:
            break
    return first_go, first_review


def judge_kappa(judge: Judge | None) -> str:
    if judge is None:
        return "-"
    rng = np.random.default_rng(1)
    human = rng.choice(np.arange(1, 6), size=20_000, p=GOOD_SCORES).astype(float)
    scored = np.floor(judge.score(human, rng) + 0.5).astype(int)
    return f"{weighted_kappa(human.astype(int), scored):.2f}"


def daily_looks(cfg: criteria.GateConfig, seeds: int, looks: int, edges: bool = True) -> None:
    print(
        f"\n## Daily looks: {seeds} seeds, {looks} daily looks, {PAIRS_PER_DAY} pairs and "
        f"{REVIEWS_PER_DAY} human reviews a day, evidence growing from the epoch's start"
    )
    for name, student, which in EDGES if edges else []:
        judge = {
            None: None,
            "random": JUDGES["random judge"],
            "0.8": JUDGES["kappa ~0.8"],
            "0.8 unsure": JUDGES["kappa ~0.8"],
        }[which]
        queue = "judge_unsure" if which and "unsure" in which else "random"
        go = sum(
            run_days(cfg, student, judge, s, looks, queue)[0] is not None for s in range(seeds)
        )
        print(f"daily looks: {name}: P(any GO over {looks} looks) = {go / seeds:.1%}")
    print(
        "\n| student | judge | judge kappa | reached GO | median days to GO "
        "| median days to review PASS | median human reviews to review PASS "
        "| vs no judge (medians) | runs where the judge needed more reviews than none |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    never = math.inf
    for label, student in (("good (mean 4.46)", GOOD), ("close (mean 4.20)", CLOSE)):
        baseline: list[float] = []
        rows = []
        for name, judge in JUDGES.items():
            # The gate uses a judge only when it was calibrated before the evidence epoch
            # (weighted kappa >= MIN_JUDGE_KAPPA, shadowtutor.gate.evidence.judge_trusted):
            # here its kappa on separate data stands in for that calibration.
            if judge is not None and float(judge_kappa(judge)) < sampling.MIN_JUDGE_KAPPA:
                rows.append((f"{name} (not calibrated: not used)", judge, "ignored"))
            else:
                rows.append((name, judge, "random"))
        for name, base in UNSURE.items():
            # The real queue follows the judge only when it is calibrated (weighted kappa
            # >= pick.MIN_JUDGE_KAPPA on the pairs both scored), else it samples uniformly;
            # here the judge's true kappa stands in for the measured one.
            trusted = float(judge_kappa(JUDGES[base])) >= sampling.MIN_JUDGE_KAPPA
            row = name if trusted else f"{name} (falls back to uniform; not used)"
            rows.append((row, JUDGES[base], "judge_unsure" if trusted else "ignored"))
        for name, judge, queue in rows:
            gate_judge = None if queue == "ignored" else judge  # the same human reviews
            queue = "random" if queue == "ignored" else queue
            runs = [run_days(cfg, student, gate_judge, s, looks, queue) for s in range(seeds)]
            # Medians over every run, a run that never got there counting as "later than
            # all": a median over the successful runs only would favour the luckiest samples.
            go_days = [never if g is None else g for g, _ in runs]
            review_days = [never if r is None else r for _, r in runs]
            med = lambda xs: "never" if np.isinf(np.median(xs)) else f"{np.median(xs):.0f}"  # noqa: E731
            mid = float(np.median(review_days))
            reviews = "never" if mid == never else f"{mid * REVIEWS_PER_DAY:.0f}"
            if judge is None:
                baseline = review_days
                ratio = worse = "-"
            else:
                base = float(np.median(baseline))
                ratio = "-" if math.isinf(base) or math.isinf(mid) else f"{mid / base:.0%}"
                # Paired (same seed; the same reviews unless the queue picks them): how often
                # this judge made people wait longer than no judge.
                more = sum(r > b for r, b in zip(review_days, baseline, strict=True))
                worse = f"{more / seeds:.1%}"
            print(
                f"| {label} | {name} | {judge_kappa(judge)} "
                f"| {sum(g != never for g in go_days) / seeds:.0%} "
                f"| {med(go_days)} "
                f"| {med(review_days)} | {reviews} | {ratio} | {worse} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=200, help="Seeds per one-look case.")
    parser.add_argument("--daily-seeds", type=int, default=100, help="Seeds per daily case.")
    parser.add_argument(
        "--no-edges", action="store_true", help="Daily looks: only the days-to-GO table."
    )
    parser.add_argument("--days", type=int, default=45, help="Daily looks per run.")
    parser.add_argument("--only", default="", help="One-look cases whose name contains this.")
    args = parser.parse_args()
    data = tomllib.loads(criteria.DEFAULT_CONFIG.read_text())
    data["eligibility"] = {"categories": ["greeting"]}
    cfg = criteria.parse_config(data)
    started = time.perf_counter()
    if args.seeds:
        single_looks(cfg, args.seeds, args.only)
    if args.daily_seeds:
        daily_looks(cfg, args.daily_seeds, args.days, edges=not args.no_edges)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

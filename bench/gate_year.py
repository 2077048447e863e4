"""A year of daily looks: how often does a student exactly at a bar ever get GO?

Students exactly at one bar at a time (good on every other criterion), 365 daily looks at the
evidence growing from the epoch's start, 600 pairs and 8 human reviews a day per student, the
shipped criteria (core/shadowtutor/data/gate.toml, one candidate category). Per case, the share
of runs in which the criterion at its bar ever PASSed for any student (an upper bound of
P(any GO): a GO needs every criterion to pass) and its one-sided 95 % Wilson upper bound.
The looks run the criterion's own function (``shadowtutor.testing.yearsim``); ``--check``
runs seeds of every case through ``decide`` itself, look by look, and counts disagreements.

Also the single look at 10 reviews, exactly: every way 10 scores can fall (1,001 of them),
weighted by its probability, through the review criterion.

    .venv/bin/python bench/gate_year.py [--runs 500] [--check 2] [--cases 0,1]
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
import tomllib

import numpy as np

from shadowtutor.gate import criteria, means, outcomes, stats
from shadowtutor.gate.criteria import Aggregate
from shadowtutor.testing import yearsim
from shadowtutor.testing.gatesim import Student

GOOD = (0.01, 0.02, 0.07, 0.30, 0.60)
DISTRIBUTIONS = {  # mean exactly 4.0 each
    "skewed (4s and 5s, 1 in 15 a 1)": (1 / 15, 0.0, 0.0, 11 / 15, 3 / 15),
    "bimodal (1 in 4 a 1, else 5)": (0.25, 0.0, 0.0, 0.0, 0.75),
    "top-heavy (7 in 10 a 5, 1s and 3s)": (0.2, 0.0, 0.1, 0.0, 0.7),
    "spread (2/5/14/49/30 %)": (0.02, 0.05, 0.14, 0.49, 0.30),
}
AT_P95 = yearsim.at_p95(1500.0, 0.5, 0.995)  # 95 % of requests answered within 1.5 s


def at_score(probs: tuple[float, ...]) -> Student:
    return Student(0.995, 500, 0.5, 0.6, probs)  # type: ignore[arg-type]


SUCCESS = Student(0.980, 500, 0.5, 0.6, GOOD)
P95 = Student(0.995, AT_P95, 0.5, 0.6, GOOD)
SIMILAR = Student(0.995, 500, 0.5, 0.45, GOOD)
SKEWED = at_score(DISTRIBUTIONS["skewed (4s and 5s, 1 in 15 a 1)"])
# (name, student, students at the bar together, criteria change on this day or 0, criterion)
CASES: list[tuple[str, Student, int, int, str]] = [
    *((f"score 4.0, {n}", at_score(p), 1, 0, "review_score") for n, p in DISTRIBUTIONS.items()),
    ("success exactly 98 %", SUCCESS, 1, 0, "success_rate"),
    ("P95 exactly 1,500 ms", P95, 1, 0, "p95_latency"),
    ("similarity exactly 0.45 (lexical)", SIMILAR, 1, 0, "similarity"),
    ("three students: score 4.0 skewed", SKEWED, 3, 0, "review_score"),
    ("three students: success 98 %", SUCCESS, 3, 0, "success_rate"),
    ("three students: P95 1,500 ms", P95, 3, 0, "p95_latency"),
    ("three students: similarity 0.45", SIMILAR, 3, 0, "similarity"),
    ("criteria change on day 183: score 4.0 skewed", SKEWED, 1, 183, "review_score"),
    ("criteria change on day 183: success 98 %", SUCCESS, 1, 183, "success_rate"),
    ("criteria change on day 183: P95 1,500 ms", P95, 1, 183, "p95_latency"),
]


def streams(
    case: tuple[str, Student, int, int, str], seed: int, days: int, pairs: int, keep: bool
) -> list[yearsim.Stream]:
    _, student, count, _, key = case
    return [
        yearsim.draw(
            student,
            np.random.default_rng([seed, k]),
            days=days,
            pairs=pairs,
            reviews=8,
            bar_ms=1500.0,
            keep=keep,
            only="" if keep else key,
        )
        for k in range(count)
    ]


def year(cfg: criteria.GateConfig, runs: int, days: int, pairs: int, picked: set[int]) -> None:
    print(f"\n## {runs} runs of {days} daily looks, {pairs} pairs and 8 reviews a day per student")
    print(
        "\n| student(s) exactly at a bar | P(criterion at its bar ever PASS) >= P(any GO) "
        "| 95 % upper bound (Wilson) | median day of the first PASS (of those) | s per run |"
    )
    print("|---|---|---|---|---|")
    for i, case in enumerate(CASES):
        if picked and i not in picked:
            continue
        started = time.perf_counter()
        days_hit = []
        for seed in range(runs):
            got = yearsim.first_pass(cfg, case[4], streams(case, seed, days, pairs, False), case[3])
            if got is not None:
                days_hit.append(got)
        hits = len(days_hit)
        upper = stats.wilson_bounds(hits, runs)[1]
        when = f"{np.median(days_hit):.0f}" if days_hit else "-"
        each = (time.perf_counter() - started) / runs
        print(
            f"| {case[0]} | {hits}/{runs} = {hits / runs:.1%} | {upper:.1%} | {when} "
            f"| {each:.2f} |",
            flush=True,
        )


def check(cfg: criteria.GateConfig, seeds: int, days: int, pairs: int, picked: set[int]) -> None:
    print(f"\n## decide vs the fast looks: {seeds} seed(s) per case, {days} looks")
    print("\n| case | looks compared | status differs | GO where the fast look saw no PASS "
          "| decide: first GO | fast: first PASS |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for i, case in enumerate(CASES):
        if picked and i not in picked:
            continue
        for seed in range(seeds):
            data = streams(case, seed, days, pairs, True)
            got = yearsim.decide_year(cfg, case[4], data, case[3])
            fast = yearsim.first_pass(cfg, case[4], data, case[3])
            print(
                f"| {case[0]} (seed {seed}) | {got.looks} | {got.differ} "
                f"| {got.go_without_pass} | {got.first_go or 'never'} | {fast or 'never'} |",
                flush=True,
            )


def ten_reviews(cfg: criteria.GateConfig, sizes: tuple[int, ...]) -> None:
    """P(review criterion PASS at one look), exactly: every composition of n scores."""
    confs = [
        (criteria.error_budget(cfg, 1, 1, 1)[0], "decide's, 1 student x 1 category"),
        (cfg.confidence, "the whole 5 %"),
    ]
    print("\n## One look at n reviews, exact (every way the scores can fall)")
    print("\n| score distribution (mean 4.0) | n | confidence | P(PASS) |")
    print("|---|---|---|---|")
    for n in sizes:
        ways = [c for c in itertools.product(range(n + 1), repeat=5) if sum(c) == n]
        for name, probs in DISTRIBUTIONS.items():
            for conf, said in confs:
                total = 0.0
                for counts in ways:
                    p = _multinomial(n, counts, probs)
                    if p == 0 or np.dot(counts, range(1, 6)) < 4 * n:
                        continue  # no PASS below the bar (the bound is under the estimate)
                    agg = Aggregate(scores={s + 1: c for s, c in enumerate(counts) if c})
                    row = means.review_score(cfg, "greeting", agg, conf, project=False)
                    total += p * (row.status == outcomes.PASS)
                print(f"| {name} | {n} | {conf:.2%} ({said}) | {total:.3%} |", flush=True)


def _multinomial(n: int, counts: tuple[int, ...], probs: tuple[float, ...]) -> float:
    if any(c and not p for c, p in zip(counts, probs, strict=True)):
        return 0.0
    log = math.lgamma(n + 1) + sum(
        c * math.log(p) - math.lgamma(c + 1) for c, p in zip(counts, probs, strict=True) if c
    )
    return math.exp(log)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=500, help="Runs per year case (0: none).")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--pairs", type=int, default=600, help="Pairs a day per student.")
    parser.add_argument("--cases", default="", help="Cases by 0-based index, e.g. 0,4,5.")
    parser.add_argument("--check", type=int, default=0, help="Seeds per case through decide.")
    parser.add_argument("--check-days", type=int, default=365)
    parser.add_argument("--reviews", default="10", help="Single-look sizes, e.g. 10,20.")
    args = parser.parse_args()
    data = tomllib.loads(criteria.DEFAULT_CONFIG.read_text())
    data["eligibility"] = {"categories": ["greeting"]}
    cfg = criteria.parse_config(data)
    picked = {int(i) for i in args.cases.split(",") if i.strip()}
    started = time.perf_counter()
    if args.reviews:
        ten_reviews(cfg, tuple(int(n) for n in args.reviews.split(",")))
    if args.runs:
        year(cfg, args.runs, args.days, args.pairs, picked)
    if args.check:
        check(cfg, args.check, args.check_days, args.pairs, picked)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

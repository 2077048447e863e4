"""How often does the gate say GO for a student that should not get it?

Simulates windows (plain aggregates, as the gate sees them) for known students over many seeds
and runs the shipped criteria (core/data/gate.toml, one candidate category). Prints, per
student, the share of runs ending GO / NO-GO / NOT ENOUGH DATA.

    /work/venv/bin/python bench/gate_simulation.py [--seeds 500]
"""

from __future__ import annotations

import argparse
import math
import time
import tomllib

import numpy as np

from shadowtutor.gate import criteria as gate  # noqa: E402
from shadowtutor.testing.gatesim import Student, window  # noqa: E402

GOOD_SCORES = (0.01, 0.02, 0.07, 0.30, 0.60)
AT_4 = (0.02, 0.05, 0.14, 0.49, 0.30)  # mean exactly 4.00
MEDIAN_AT_1500 = 1500 / math.exp(1.6448536 * 0.5)  # true P95 exactly 1,500 ms

S = Student
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
    ("good, 400 pairs / 40 reviews", S(0.995, 500, 0.5, 0.60, GOOD_SCORES), 400, 40),
    ("good, 1,200 pairs / 120 reviews", S(0.995, 500, 0.5, 0.60, GOOD_SCORES), 1200, 120),
    ("good, 3,000 pairs / 300 reviews", S(0.995, 500, 0.5, 0.60, GOOD_SCORES), 3000, 300),
    (
        "A/A teacher vs teacher, 1,500/120",
        S(0.999, 600, 0.45, 0.7, (0, 0.01, 0.05, 0.34, 0.6)),
        1500,
        120,
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--only", default="", help="Run only cases whose name contains this.")
    args = parser.parse_args()
    data = tomllib.loads(gate.DEFAULT_CONFIG.read_text())
    data["eligibility"] = {"categories": ["greeting"]}
    cfg = gate.parse_config(data)
    print(f"{args.seeds} seeds per case, shipped criteria, confidence {cfg.confidence}")
    print("| case | GO | NO-GO | NOT ENOUGH DATA |\n|---|---|---|---|")
    started = time.perf_counter()
    for name, student, pairs, reviews in CASES:
        if args.only not in name:
            continue
        counts = {gate.GO: 0, gate.NO_GO: 0, gate.INCONCLUSIVE: 0}
        for seed in range(args.seeds):
            w = window(student, np.random.default_rng(10_000 + seed), pairs=pairs, reviews=reviews)
            counts[gate.decide(cfg, w).outcome] += 1
        share = {k: v / args.seeds for k, v in counts.items()}
        go, no, wait = share[gate.GO], share[gate.NO_GO], share[gate.INCONCLUSIVE]
        print(f"| {name} | {go:.1%} | {no:.1%} | {wait:.1%} |")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

"""How often does the rollout guard roll back a student as good as the teacher, and how soon
does it roll back one that is worse?

Simulates a rollout day by day with the shipped criteria (core/shadowtutor/data/gate.toml: two
eligible categories x three signals, margins 1 / 1 / 0.5 points, 100 events per arm before a
verdict, the first evidence epoch's share of the 5 % budget). Each category gets ``--requests``
plain requests a day, the stage's share of them in the student's arm (the stable hash); a share
of the answers is rated with a thumb; thumbs down, regenerates and errors happen at each arm's
rate. The guard looks once a day at the cumulative counts, with the library's own test
(``shadowtutor.gate.guard.worse_evidence``), and any WORSE is an automatic rollback.

1. Student equal to the teacher: P(any automatic rollback) over 30 and 365 daily looks, with
   a Wilson 95 % upper bound, for typical, low and skewed base rates, a stage of 50 %, a
   weekly cycle of the base rates, a rollout that moves through its stages while the rates
   drift, and a student exactly at every margin (the hardest case that must not roll back).
2. Student worse: days to the rollback (median, 90th percentile) for a thumbs-down rate 3
   points worse (15 % against 12 %) at 10 % of 2,000 requests a day with 5 % of answers rated,
   and variations (more rated, higher stages, a smaller margin, errors 2 % against 0.5 %).

    .venv/bin/python bench/guard_simulation.py [--runs 2000] [--worse-runs 400]
        [--worse-days 730] [--only equal|worse] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shadowtutor.gate import criteria, guard
from shadowtutor.gate.guard_config import SIGNALS

CONFIG = criteria.load_config()
MARGINS = np.array([CONFIG.guard.margins[s] / 100 for s in SIGNALS])
TYPICAL = {"thumbs_down": 0.12, "regenerate": 0.03, "error": 0.005}
LOW = {"thumbs_down": 0.02, "regenerate": 0.005, "error": 0.0005}
SKEWED = {"thumbs_down": 0.40, "regenerate": 0.20, "error": 0.05}


@dataclass
class Scenario:
    name: str
    teacher: dict[str, float]
    student: dict[str, float] = field(default_factory=dict)  # default: the teacher's rates
    stage: Callable[[int], float] = lambda day: 0.10  # the student's share on a day (0-based)
    drift: Callable[[int], float] = lambda day: 1.0  # both arms' rates times this on a day
    rated: float = 0.05
    requests: int = 2000
    margins: np.ndarray = field(default_factory=lambda: MARGINS.copy())


def wilson_upper(k: int, n: int, z: float = 1.6449) -> float:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre + half


def kl(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Bernoulli KL(p || m), elementwise (0 log 0 = 0)."""
    p, m = np.clip(p, 0, 1), np.clip(m, 1e-12, 1 - 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(p > 0, p * np.log(p / m), 0.0)
        b = np.where(p < 1, (1 - p) * np.log((1 - p) / (1 - m)), 0.0)
    out: np.ndarray = a + b
    return out


def worse_now(
    strata: list[tuple[np.ndarray, ...]], margin: np.ndarray, target: float, min_events: int
) -> np.ndarray:
    """The guard's WORSE verdicts on flat arrays, one (ks, ns, kt, nt) per stage (the
    strata, summed as ``guard.stratified_evidence`` does). Rows that cannot reach the target
    are skipped without changing any verdict: at the teacher's own rate a stage's teacher
    capital is at most 1 and its student capital at most exp(n KL(rate || teacher rate +
    margin)) (the best constant bet), and the test takes the smallest over every rate."""
    ns_all = sum(s[1] for s in strata)
    nt_all = sum(s[3] for s in strata)
    ceiling = np.zeros(margin.shape)
    for ks, ns, kt, nt in strata:
        ps = np.where(ns > 0, ks / np.maximum(ns, 1), 0)
        pt = np.where(nt > 0, kt / np.maximum(nt, 1), 0)
        ceiling += np.where(ps > pt + margin, ns * kl(ps, pt + margin), 0.0)
    live = (ns_all >= min_events) & (nt_all >= min_events) & (ceiling >= target)
    idx = np.nonzero(live)[0]
    out = np.zeros(margin.shape, dtype=bool)
    if len(idx):
        total = sum(
            guard.worse_evidence(ks[idx], ns[idx], kt[idx], nt[idx], margin[idx])
            for ks, ns, kt, nt in strata
        )
        out[idx] = total >= target
    return out


def simulate(scn: Scenario, runs: int, days: int, seed: int, cats: int = 2) -> np.ndarray:
    """The day (1-based) of each run's first automatic rollback; inf for none. ``cats``
    categories each with all three signals; the student's rates in the first category."""
    rng = np.random.default_rng(seed)
    spend = guard.budget(CONFIG, cats)
    target = math.log(1 / spend.alpha_worse)
    shape = (runs, cats, len(SIGNALS))
    by_stage: dict[float, list[np.ndarray]] = {}
    p_t = np.array([scn.teacher[s] for s in SIGNALS])
    p_s = np.tile(p_t, (cats, 1))
    p_s[0] = [scn.student.get(s, scn.teacher[s]) for s in SIGNALS]
    margin = np.broadcast_to(scn.margins, shape).ravel()
    first = np.full(runs, np.inf)
    for day in range(days):
        share, k = scn.stage(day), scn.drift(day)
        ks, ns, kt, nt = by_stage.setdefault(share, [np.zeros(shape) for _ in range(4)])
        a_s = rng.binomial(scn.requests, share, (runs, cats))
        a_t = scn.requests - a_s
        r_s, r_t = rng.binomial(a_s, scn.rated), rng.binomial(a_t, scn.rated)
        # denominators per signal: rated answers for thumbs, answers for the others
        n_s = np.stack([r_s, a_s, a_s], axis=-1)
        n_t = np.stack([r_t, a_t, a_t], axis=-1)
        ks += rng.binomial(n_s, np.clip(p_s * k, 0, 1))
        kt += rng.binomial(n_t, np.clip(p_t * k, 0, 1))
        ns += n_s
        nt += n_t
        strata = [tuple(a.ravel() for a in arrays) for arrays in by_stage.values()]
        hit = worse_now(strata, margin, target, CONFIG.guard.min_events)
        hit = hit.reshape(shape).any(axis=(1, 2))
        first = np.where(np.isinf(first) & hit, day + 1, first)
    return first


def pooled_stage_check(runs: int, seed: int) -> float:
    """The stages scenario with the stages pooled (what the guard does not do): the share
    of runs an equal student is rolled back in 365 looks."""
    scn = NULLS[6]
    rng = np.random.default_rng(seed)
    target = math.log(1 / guard.budget(CONFIG, 2).alpha_worse)
    shape = (runs, 2, len(SIGNALS))
    ks, ns, kt, nt = (np.zeros(shape) for _ in range(4))
    p_t = np.array([scn.teacher[s] for s in SIGNALS])
    margin = np.broadcast_to(scn.margins, shape).ravel()
    ever = np.zeros(runs, dtype=bool)
    for day in range(365):
        share, k = scn.stage(day), scn.drift(day)
        a_s = rng.binomial(scn.requests, share, (runs, 2))
        a_t = scn.requests - a_s
        r_s, r_t = rng.binomial(a_s, scn.rated), rng.binomial(a_t, scn.rated)
        n_s, n_t = np.stack([r_s, a_s, a_s], axis=-1), np.stack([r_t, a_t, a_t], axis=-1)
        ks += rng.binomial(n_s, np.clip(p_t * k, 0, 1))
        kt += rng.binomial(n_t, np.clip(p_t * k, 0, 1))
        ns += n_s
        nt += n_t
        flat = [(ks.ravel(), ns.ravel(), kt.ravel(), nt.ravel())]
        ever |= (
            worse_now(flat, margin, target, CONFIG.guard.min_events).reshape(shape).any(axis=(1, 2))
        )
    return float(ever.mean())


def stages(day: int) -> float:
    """10 % for 30 days, 25 % for 30, then 50 %."""
    return 0.10 if day < 30 else 0.25 if day < 60 else 0.50


NULLS = [
    Scenario("typical rates (12 % / 3 % / 0.5 %), stage 10 %", TYPICAL),
    Scenario("low rates (2 % / 0.5 % / 0.05 %), stage 10 %", LOW),
    Scenario("skewed rates (40 % / 20 % / 5 %), stage 10 %", SKEWED),
    Scenario("typical rates, stage 50 %", TYPICAL, stage=lambda d: 0.5),
    Scenario(
        "typical rates, 20 % rated, 20,000 requests a day", TYPICAL, rated=0.2, requests=20000
    ),  # fmt: skip
    Scenario(
        "weekly cycle (rates x0.5..x1.5)",
        TYPICAL,
        drift=lambda d: 1 + 0.5 * math.sin(2 * math.pi * d / 7),
    ),  # fmt: skip
    Scenario(
        "stages 10 -> 25 -> 50 % while rates rise 1 % a day (x2 by day 70)",
        TYPICAL,
        stage=stages,
        drift=lambda d: min(2.0, 1 + d / 70),
    ),  # fmt: skip
]

AT_MARGIN = {"thumbs_down": 0.13, "regenerate": 0.04, "error": 0.01}  # typical + the margins
NULLS += [
    Scenario("student exactly at the margins (13 % / 4 % / 1 %), stage 10 %", TYPICAL, AT_MARGIN),
    Scenario(
        "... at the margins, stage 50 %, 20 % rated, 20,000 requests a day",
        TYPICAL,
        AT_MARGIN,
        stage=lambda d: 0.5,
        rated=0.2,
        requests=20000,
    ),  # fmt: skip
]

WORSE_3 = {"thumbs_down": 0.15}
ALTERNATIVES = [
    Scenario(
        "thumbs down 15 % vs 12 %, stage 10 %, 5 % rated (the issue's case)", TYPICAL, WORSE_3
    ),  # fmt: skip
    Scenario("... 20 % rated", TYPICAL, WORSE_3, rated=0.2),
    Scenario("... stage 25 %", TYPICAL, WORSE_3, stage=lambda d: 0.25),
    Scenario("... stage 50 %", TYPICAL, WORSE_3, stage=lambda d: 0.5),
    Scenario(
        "... margin 0.5 point", TYPICAL, WORSE_3, margins=np.array([0.005, 0.01, 0.005])
    ),  # fmt: skip
    Scenario("errors 2 % vs 0.5 %, stage 10 %", TYPICAL, {"error": 0.02}),
    Scenario("regenerates 6 % vs 3 %, stage 10 %", TYPICAL, {"regenerate": 0.06}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs per equal-student case")
    parser.add_argument("--worse-runs", type=int, default=400, help="runs per worse case")
    parser.add_argument("--worse-days", type=int, default=730)
    parser.add_argument("--quick", action="store_true", help="100 runs each, for a smoke test")
    parser.add_argument("--only", choices=("equal", "worse"), help="one of the two tables")
    args = parser.parse_args()
    if args.quick:
        args.runs = args.worse_runs = 100
    print(f"# guard simulation; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f} at start")  # fmt: skip
    print(f"# {guard.budget(CONFIG, 2).words}")
    if args.only != "worse":
        equal(args.runs)
    if args.only != "equal":
        worse(args.worse_runs, args.worse_days)
    print(f"\n(load {os.getloadavg()[0]:.1f} at end)")


def equal(runs: int) -> None:
    print("\n| student no worse than the margins | runs | rollbacks in 30 looks | in 365 looks |")
    print("|---|---|---|---|")
    t0 = time.perf_counter()
    for i, scn in enumerate(NULLS):
        first = simulate(scn, runs, 365, seed=100 + i)
        cells = []
        for looks in (30, 365):
            k = int((first <= looks).sum())
            cells.append(f"{k} ({k / runs:.1%}; ≤ {wilson_upper(k, runs):.1%})")
        print(f"| {scn.name} | {runs:,} | {cells[0]} | {cells[1]} |", flush=True)
    pooled = pooled_stage_check(runs, seed=100 + 6)
    print(f"\nThe stages case with the stages pooled instead of strata: {pooled:.1%} rolled back")
    print(f"\n(seconds: {time.perf_counter() - t0:.0f})")


def worse(runs: int, days: int) -> None:
    print("\n| student worse | runs | median days to rollback | 90th percentile | "
          f"not within {days} days |")  # fmt: skip
    print("|---|---|---|---|---|")
    t0 = time.perf_counter()
    for i, scn in enumerate(ALTERNATIVES):
        first = simulate(scn, runs, days, seed=200 + i)
        ordered = np.sort(first)
        med = ordered[math.ceil(0.5 * len(ordered)) - 1]
        p90 = ordered[math.ceil(0.9 * len(ordered)) - 1]
        never = int(np.isinf(first).sum())

        def show(x: float) -> str:
            return f"> {days}" if math.isinf(x) else f"{x:.0f}"

        print(f"| {scn.name} | {runs:,} | {show(med)} | {show(p90)} | "
              f"{never / runs:.0%} |", flush=True)  # fmt: skip
    print(f"\n(seconds: {time.perf_counter() - t0:.0f})")


if __name__ == "__main__":
    main()

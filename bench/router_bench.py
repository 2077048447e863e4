"""Per-request routing against category gating at the same guaranteed floor (issue 31).

    .venv/bin/python bench/router_bench.py                 # both parts, defaults below
    .venv/bin/python bench/router_bench.py --runs 200      # more simulated runs for coverage

Both parts use the library's own pipeline (``router.store.fit_version``: the stable split,
scikit-learn's model, Learn-then-Test per category at the gate's per-claim alpha) on labelled
pairs, then measure on fresh traffic whose truth is known:

1. **Demo**: ``shadowtutor demo``'s pairs (20,000, seed 7; its business requests differ in
   difficulty by prompt), a random ``--labels`` of them labelled by the demo's own simulated
   reviewers (acceptable: score >= the review bar 4), the rest as traffic (acceptable rate
   measured by the same reviewers).
2. **Simulation**: four categories whose request types differ in difficulty inside each
   category (each type's own acceptable probability), ``--runs`` independent runs (new labels,
   new model, new thresholds); the floor's coverage: in how many runs the acceptable rate of
   the traffic routed to the student fell below the floor (exact, from the types' true rates).

Category gating: a category is served whole when the Clopper-Pearson lower bound of its
labelled pairs' acceptable rate (all of them, not only the held-out half) clears the floor at
the same alpha. Routed: the student takes the requests at or above the category's certified
threshold (none where no threshold is certified).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shadowtutor.gate.criteria import load_config
from shadowtutor.router import features, labels, model, store, threshold

BAR = 4.0


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f}, {os.cpu_count()} CPUs"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


@dataclass
class Outcome:
    routed_share: float
    gated_share: float
    routed_rate: dict[str, float]  # true acceptable rate of the routed traffic, by category
    shares: dict[str, float]  # routed share within each category
    thresholds: dict[str, float | None]
    gated: dict[str, bool]


def evaluate(
    found: labels.Labels,
    all_labels: dict[str, list[bool]],
    traffic: Sequence[tuple[str, str, float]],  # (category, router text, true P(acceptable))
    *,
    floor: float,
    alpha_of: Any,
) -> Outcome:
    scorer, choices, metrics = store.fit_version(found, floor=floor, alpha_of=alpha_of)
    alpha = metrics["alpha"]
    limits = {c: choices[c]["threshold"] for c in choices}
    scores = model.sklearn_scores(scorer, [t for _, t, _ in traffic])
    served: dict[str, list[float]] = {}
    total: Counter[str] = Counter()
    for (cat, _text, truth), score in zip(traffic, scores, strict=True):
        total[cat] += 1
        limit = limits.get(cat)
        if limit is not None and score >= limit:
            served.setdefault(cat, []).append(truth)
    gated = {
        c: threshold.category_gate(ys, floor=floor, alpha=alpha) for c, ys in all_labels.items()
    }
    n = len(traffic)
    return Outcome(
        routed_share=sum(len(v) for v in served.values()) / n,
        gated_share=sum(total[c] for c, ok in gated.items() if ok) / n,
        routed_rate={c: statistics.fmean(v) for c, v in served.items() if v},
        shares={c: len(served.get(c, [])) / total[c] for c in total},
        thresholds=limits,
        gated=gated,
    )


# --- the demo ----------------------------------------------------------------------------


def demo_part(n_labels: int, floor: float) -> list[str]:
    from shadowtutor.demo.generate import _demo_review, generate_pairs
    from shadowtutor.tables import ReviewItem

    t0 = time.monotonic()
    pairs = list(generate_pairs(pairs=20_000, days=60, seed=7))
    rng = random.Random(11)
    now = datetime.now(UTC)
    ok_pairs = [p for p in pairs if p.record["student"].get("response") is not None]

    def reviewed(i: int, p: Any) -> bool:
        rec = p.record
        item = ReviewItem(
            id=i,
            pair_id=rec["id"],
            similarity=rec["similarity"]["score"],
            language=rec["language"],
            snapshot={"teacher": {"response": rec["teacher"]["response"]}},
        )
        review = _demo_review(rng, item, 1, 0.0, {rec["id"]: p.flaws}, now)
        return (review.student_score or 0) >= BAR

    rng.shuffle(ok_pairs)
    labelled, rest = ok_pairs[:n_labels], ok_pairs[n_labels:]
    human = []
    all_labels: dict[str, list[bool]] = {}
    for i, p in enumerate(labelled):
        rec = p.record
        ok = reviewed(i, p)
        text = features.request_text(rec["messages"], category=rec["category"])
        human.append(labels.Labelled(rec["id"], rec["category"], text, ok, None))
        all_labels.setdefault(rec["category"], []).append(ok)
    found = labels.assemble(human, {}, [])
    traffic = [
        (
            p.record["category"],
            features.request_text(p.record["messages"], category=p.record["category"]),
            float(reviewed(n_labels + i, p)),
        )
        for i, p in enumerate(rest)
    ]
    config = load_config()
    out = evaluate(
        found,
        all_labels,
        traffic,
        floor=floor,
        alpha_of=lambda k: store.alpha_for(config, 1, k),
    )
    took = time.monotonic() - t0
    lines = [
        f"demo (20,000 pairs, seed 7; {n_labels:,} labelled by the demo's reviewers, "
        f"{len(traffic):,} as traffic; floor {floor:.0%}; {took:.0f} s; {load()}):"
    ]
    lines += _table(out, all_labels)
    return lines


def _table(out: Outcome, all_labels: dict[str, list[bool]]) -> list[str]:
    lines = ["  category   labelled  acc.rate  gated  routed share  routed acc.rate  threshold"]
    for cat in sorted(out.shares):
        ys = all_labels.get(cat, [])
        thr = out.thresholds.get(cat)
        rate = out.routed_rate.get(cat)
        lines.append(
            f"  {cat:<10} {len(ys):>8}  {statistics.fmean(ys) if ys else 0:8.3f}  "
            f"{'yes' if out.gated.get(cat) else 'no':>5}  {out.shares[cat]:12.1%}  "
            f"{'-' if rate is None else f'{rate:.3f}':>15}  {'-' if thr is None else f'{thr:.3f}'}"
        )
    ratio = out.routed_share / out.gated_share if out.gated_share else float("inf")
    lines.append(
        f"  traffic the student serves: routed {out.routed_share:.1%}, category gating "
        f"{out.gated_share:.1%}: {ratio:.2f}x"
    )
    return lines


# --- the simulation ----------------------------------------------------------------------

# category -> (traffic share, the acceptable probabilities of its request types)
CATEGORIES = {
    "greeting": (0.25, [0.99, 0.98, 0.97, 0.99, 0.96, 0.98]),
    "casual": (0.25, [0.98, 0.97, 0.95, 0.75, 0.96, 0.55, 0.97, 0.7]),
    "business": (0.3, [0.97, 0.96, 0.45, 0.35, 0.98, 0.5, 0.95, 0.3, 0.97, 0.6]),
    "support": (0.2, [0.96, 0.4, 0.3, 0.98, 0.5, 0.45, 0.97, 0.35]),
}
SHARED = [f"w{i}" for i in range(300)]


def _request(rng: random.Random, cat: str, kind: int) -> str:
    words = [f"{cat}t{kind}a", f"{cat}t{kind}b", f"{cat}t{kind}c"]
    keep = [w for w in words if rng.random() < 0.8] or words[:1]
    noise = rng.sample(SHARED, rng.randrange(3, 12))
    text = " ".join(rng.sample(keep + noise, len(keep) + len(noise)))
    return features.request_text([{"role": "user", "content": text}], category=cat)


def _draw(rng: random.Random, n: int) -> list[tuple[str, str, float]]:
    cats = list(CATEGORIES)
    weights = [CATEGORIES[c][0] for c in cats]
    out = []
    for _ in range(n):
        cat = rng.choices(cats, weights)[0]
        kinds = CATEGORIES[cat][1]
        kind = rng.randrange(len(kinds))
        out.append((cat, _request(rng, cat, kind), kinds[kind]))
    return out


def simulation_part(runs: int, n_labels: int, n_traffic: int, floor: float) -> list[str]:
    config = load_config()
    t0 = time.monotonic()
    outcomes = []
    for run in range(runs):
        if run and run % 10 == 0:
            print(f"  ... {run} runs ({time.monotonic() - t0:.0f} s, {load()})", flush=True)
        rng = random.Random(1000 + run)
        human = []
        all_labels: dict[str, list[bool]] = {}
        for i, (cat, text, p) in enumerate(_draw(rng, n_labels)):
            ok = rng.random() < p
            human.append(labels.Labelled(f"r{run}-{i}", cat, text, ok, None))
            all_labels.setdefault(cat, []).append(ok)
        found = labels.assemble(human, {}, [])
        traffic = _draw(rng, n_traffic)
        outcomes.append(
            evaluate(
                found,
                all_labels,
                traffic,
                floor=floor,
                alpha_of=lambda k: store.alpha_for(config, 1, k),
            )
        )
    took = time.monotonic() - t0
    below = [any(r < floor for r in o.routed_rate.values()) for o in outcomes]
    cells = [(c, r) for o in outcomes for c, r in o.routed_rate.items()]
    cell_below = sum(r < floor for _, r in cells)
    routed = statistics.fmean(o.routed_share for o in outcomes)
    gated = statistics.fmean(o.gated_share for o in outcomes)
    ratios = [o.routed_share / o.gated_share for o in outcomes if o.gated_share > 0]
    lines = [
        f"simulation ({runs} runs x {n_labels:,} labelled pairs, {n_traffic:,} requests of "
        f"traffic each; floor {floor:.0%}, alpha {store.alpha_for(config, 1, 4):.2%} per "
        f"category; {took:.0f} s; {load()}):"
    ]
    lines += _table(outcomes[0], {c: [] for c in CATEGORIES})[-1:]
    per_cat = {c: statistics.fmean(o.shares.get(c, 0.0) for o in outcomes) for c in CATEGORIES}
    lines.append(
        "  mean routed share by category: " + ", ".join(f"{c} {s:.1%}" for c, s in per_cat.items())
    )
    lines.append(
        f"  mean over runs: routed {routed:.1%}, category gating {gated:.1%}; "
        f"ratio per run median {statistics.median(ratios):.2f}x (min {min(ratios):.2f}x)"
    )
    lines.append(
        f"  coverage: runs with some category's routed acceptable rate below the floor "
        f"{sum(below)} of {runs} ({sum(below) / runs:.1%}); category-runs {cell_below} of "
        f"{len(cells)} ({cell_below / max(1, len(cells)):.1%})"
    )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--labels", type=int, default=3000, help="Labelled pairs (demo and runs).")
    ap.add_argument("--traffic", type=int, default=20_000)
    ap.add_argument("--floor", type=float, default=0.9)
    ap.add_argument("--demo-floor", type=float, default=0.8)
    ap.add_argument("--only", choices=["demo", "simulation"])
    args = ap.parse_args()
    print(f"{cpu_name()}; at the start: {load()}", flush=True)
    if args.only in (None, "demo"):
        print("\n".join(demo_part(args.labels, args.demo_floor)), flush=True)
    if args.only in (None, "simulation"):
        lines = simulation_part(args.runs, args.labels, args.traffic, args.floor)
        print("\n".join(lines), flush=True)
    print(f"at the end: {load()}")


if __name__ == "__main__":
    main()

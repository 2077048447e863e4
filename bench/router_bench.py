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
threshold (none where no threshold is certified). **Cascade**: the router's cascade threshold
lets the student try, and the version's validator (request and the student's answer) serves
the answer when it clears its threshold, else sends it back to the teacher: its share served,
the share sent back (they wait for the student and then the teacher), and the floor's coverage
alike. In the simulation the student's answer shows a flaw (a marker word) in 80 % of its
unacceptable answers and 10 % of its acceptable ones, so the truth of a served answer is the
exact P(acceptable | type, what the answer shows).
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
    cascade_share: float = 0.0  # the cascade: share the student serves
    sent_back: float = 0.0  # share the student answered and the validator sent back
    cascade_rate: dict[str, float] | None = None  # true acceptable rate of what it served


@dataclass(frozen=True)
class Request:
    category: str
    text: str  # the router's
    answer_text: str  # the validator's ("" : no answer)
    truth: float  # P(acceptable) of the student's answer to it


def evaluate(
    found: labels.Labels,
    all_labels: dict[str, list[bool]],
    traffic: Sequence[Request],
    *,
    floor: float,
    alpha_of: Any,
) -> Outcome:
    scorer, choices, metrics, validator = store.fit_version(found, floor=floor, alpha_of=alpha_of)
    alpha = metrics["alpha"]
    limits = {c: choices[c]["threshold"] for c in choices}
    scores = model.sklearn_scores(scorer, [r.text for r in traffic])
    checks = model.sklearn_scores(validator, [r.answer_text for r in traffic]) if validator else []
    pairs = {
        c: (float(ch["router"]), float(ch["validator"]))
        for c in choices
        if (ch := (choices[c].get("cascade") or {}).get("chosen"))
    }
    served: dict[str, list[float]] = {}
    cascaded: dict[str, list[float]] = {}
    back = 0
    total: Counter[str] = Counter()
    for i, (req, score) in enumerate(zip(traffic, scores, strict=True)):
        cat = req.category
        total[cat] += 1
        limit = limits.get(cat)
        if limit is not None and score >= limit:
            served.setdefault(cat, []).append(req.truth)
        pair = pairs.get(cat)
        if pair is not None and score >= pair[0]:
            if req.answer_text and checks[i] >= pair[1]:
                cascaded.setdefault(cat, []).append(req.truth)
            else:
                back += 1
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
        cascade_share=sum(len(v) for v in cascaded.values()) / n,
        sent_back=back / n,
        cascade_rate={c: statistics.fmean(v) for c, v in cascaded.items() if v},
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
        answer = labels.answer_text_of(rec)
        human.append(labels.Labelled(rec["id"], rec["category"], text, ok, None, 1.0, answer))
        all_labels.setdefault(rec["category"], []).append(ok)
    found = labels.assemble(human, {}, [])
    traffic = [
        Request(
            p.record["category"],
            features.request_text(p.record["messages"], category=p.record["category"]),
            labels.answer_text_of(p.record),
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
    rates = out.cascade_rate or {}
    lines.append(
        f"  cascade (router + validator): serves {out.cascade_share:.1%}, sends back "
        f"{out.sent_back:.1%}; acceptable rate served by category: "
        + (", ".join(f"{c} {r:.3f}" for c, r in sorted(rates.items())) or "-")
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


FLAW_IF_BAD, FLAW_IF_OK = 0.8, 0.1  # how often the student's answer shows a flaw


def _request(rng: random.Random, cat: str, kind: int, p: float) -> tuple[Request, bool]:
    """One request of type ``kind`` (true acceptable probability ``p``), the student's answer
    drawn (acceptable or not), and whether it was acceptable."""
    words = [f"{cat}t{kind}a", f"{cat}t{kind}b", f"{cat}t{kind}c"]
    keep = [w for w in words if rng.random() < 0.8] or words[:1]
    noise = rng.sample(SHARED, rng.randrange(3, 12))
    text = " ".join(rng.sample(keep + noise, len(keep) + len(noise)))
    messages = [{"role": "user", "content": text}]
    ok = rng.random() < p
    flawed = rng.random() < (FLAW_IF_OK if ok else FLAW_IF_BAD)
    said = rng.sample(SHARED, rng.randrange(5, 20)) + (["flawmark"] if flawed else [])
    answer = {"response": " ".join(said), "finish_reason": "stop"}
    # what the validator could know at best: P(acceptable | type, flaw shown or not)
    seen_ok = FLAW_IF_OK if flawed else 1 - FLAW_IF_OK
    seen_bad = FLAW_IF_BAD if flawed else 1 - FLAW_IF_BAD
    truth = p * seen_ok / (p * seen_ok + (1 - p) * seen_bad)
    return (
        Request(
            cat,
            features.request_text(messages, category=cat),
            features.validator_text(messages, answer, category=cat),
            truth,
        ),
        ok,
    )


def _draw(rng: random.Random, n: int) -> list[tuple[Request, bool]]:
    cats = list(CATEGORIES)
    weights = [CATEGORIES[c][0] for c in cats]
    out = []
    for _ in range(n):
        cat = rng.choices(cats, weights)[0]
        kinds = CATEGORIES[cat][1]
        kind = rng.randrange(len(kinds))
        out.append(_request(rng, cat, kind, kinds[kind]))
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
        for i, (req, ok) in enumerate(_draw(rng, n_labels)):
            human.append(
                labels.Labelled(
                    f"r{run}-{i}", req.category, req.text, ok, None, 1.0, req.answer_text
                )
            )
            all_labels.setdefault(req.category, []).append(ok)
        found = labels.assemble(human, {}, [])
        traffic = [req for req, _ok in _draw(rng, n_traffic)]
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
    c_below = [any(r < floor for r in (o.cascade_rate or {}).values()) for o in outcomes]
    c_cells = [r for o in outcomes for r in (o.cascade_rate or {}).values()]
    lines.append(
        f"  cascade: mean served {statistics.fmean(o.cascade_share for o in outcomes):.1%} "
        f"(routed alone {routed:.1%}), sent back "
        f"{statistics.fmean(o.sent_back for o in outcomes):.1%} of the traffic; runs below the "
        f"floor {sum(c_below)} of {runs} ({sum(c_below) / runs:.1%}); category-runs "
        f"{sum(r < floor for r in c_cells)} of {len(c_cells)}"
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

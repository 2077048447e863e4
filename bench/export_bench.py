"""Benchmark: export 100,000 approved pairs with PII scrubbing on (target: <= 10 s).

    /work/venv/bin/python bench/export_bench.py [--pairs 100000] [--db-url URL]

Setup (not timed): a fresh SQLite database (or the PostgreSQL URL given) with the demo
generator's pairs queued for review (each prompt made unique with a ticket number, as real
traffic is), 1 in 20 prompts given an e-mail address, a phone number and a card number, and
one approving review per pair (a third judging the student worse, an eighth with a
correction). Timed: ``export.run_export`` end to end (select, load snapshots, scrub, dedupe,
split, write SFT + preference + CSV, manifest, job row), twice: the runs must give the same
bytes. Wall and CPU time are printed with the load average, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert  # noqa: E402

from shadowtutor import db  # noqa: E402
from shadowtutor.demo import generate as demo  # noqa: E402
from shadowtutor.export import jobs as export  # noqa: E402
from shadowtutor.log import schema
from shadowtutor.review import queue as review  # noqa: E402
from shadowtutor.tables import Review, ReviewItem  # noqa: E402

PII = (
    " My e-mail is mario.rossi{i}@example.it, call me on +39 333 {i:03d} 4567;"
    " card 4111 1111 1111 1111."
)


def seed(url: str, n: int) -> None:
    rng = random.Random(1)
    with db.session_scope(url) as session:
        accounts = demo.ensure_accounts(session)
        reviewer = accounts["giulia"] if "giulia" in accounts else accounts["admin"]
        items = []
        for i, pair in enumerate(demo.generate_pairs(pairs=n, days=60, seed=5)):
            rec = pair.record
            # the phrasebook repeats itself; real traffic does not: make every prompt unique
            rec["messages"][-1]["content"] += f" (ticket T-{i:06d})"
            if i % 20 == 0:
                rec["messages"][-1]["content"] += PII.format(i=i % 1000)
            snap = review.snapshot(rec)
            items.append(
                {
                    "pair_id": rec["id"],
                    "snapshot": snap,
                    "language": snap["language"],
                    "category": snap["category"],
                    "similarity": snap["similarity"],
                    "pair_ts": schema.parse_ts(rec["ts"]),
                    "status": "done",
                    "reviews_done": 1,
                }
            )
        for start in range(0, len(items), 5000):
            session.execute(insert(ReviewItem), items[start : start + 5000])
        ids = dict(session.exec(ReviewItem.__table__.select().with_only_columns(
            ReviewItem.pair_id, ReviewItem.id)).all())  # fmt: skip
        reviews = []
        for item in items:
            worse = rng.random() < 0.33
            teacher = item["snapshot"]["teacher"]["response"] or ""
            reviews.append(
                {
                    "item_id": ids[item["pair_id"]],
                    "pair_id": item["pair_id"],
                    "reviewer_id": reviewer,
                    "student_score": rng.randint(1, 2) if worse else rng.randint(3, 5),
                    "verdict": "teacher" if worse else "tie",
                    "decision": "approve",
                    "tags": [],
                    "corrected_answer": teacher + " (checked)" if rng.random() < 0.125 else None,
                    "is_current": True,
                    "created_at": item["pair_ts"],
                }
            )
        for start in range(0, len(reviews), 5000):
            session.execute(insert(Review), reviews[start : start + 5000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--db-url", default="")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="export-bench-"))
    url = args.db_url or f"sqlite:///{tmp / 'bench.db'}"
    db.upgrade(url)
    t0 = time.perf_counter()
    seed(url, args.pairs)
    print(f"setup: {args.pairs:,} reviewed pairs in {time.perf_counter() - t0:.1f} s ({url})")
    with db.session_scope(url) as session:
        admin = demo.ensure_accounts(session)["admin"]
    timings, results = [], []
    for run in range(2):
        t0, c0 = time.perf_counter(), time.process_time()
        with db.session_scope(url) as session:
            result = export.run_export(session=session, actor_id=admin, export_root=tmp / "out")
        timings.append(time.perf_counter() - t0)
        cpu = time.process_time() - c0
        results.append(result)
        c = result.counts
        print(
            f"run {run + 1}: {timings[-1]:.2f} s wall, {cpu:.2f} s CPU, load average "
            f"{os.getloadavg()[0]:.1f}  matched {c['matched']:,}  examples "
            f"{c['examples']:,}  dropped {c['dropped']}  pii {c['pii']}"
        )
    same = all(
        (results[0].path / name).read_bytes() == (results[1].path / name).read_bytes()
        for name in results[0].manifest["files"]
    )
    size = sum(p.stat().st_size for p in results[0].path.iterdir()) / 2**20
    print(f"identical bytes across runs: {same}; export folder {size:.1f} MiB")
    print(f"best of 2: {min(timings):.2f} s for {args.pairs:,} pairs (target <= 10 s)")
    print(f"machine: {os.cpu_count()} CPUs; keep the folder or delete it: {tmp}")


if __name__ == "__main__":
    main()

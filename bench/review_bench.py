"""Benchmark the review workflow on demo data: filling the queue and claim + submit.

    /work/venv/bin/python bench/review_bench.py --pairs 20000 [--pg postgresql+psycopg2://...]

Builds demo data (``shadowtutor.demo.generate.build``) in a temporary folder, then times:
- ``review.fill_queue`` for each sampling strategy (200 pairs each, fresh DuckDB connection),
- 200 rounds of ``claim_next`` + ``submit_review`` by one reviewer (one transaction each,
  as the Review page does), reported as milliseconds per round.
With --pg the store part also runs on a fresh PostgreSQL database (dropped afterwards).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import select  # noqa: E402

from shadowtutor import db  # noqa: E402
from shadowtutor.demo import generate  # noqa: E402
from shadowtutor.log import analytics  # noqa: E402
from shadowtutor.review import sampling, workflow  # noqa: E402
from shadowtutor.tables import User  # noqa: E402


def bench_store(url: str, log_dir: Path, label: str) -> None:
    with db.session_scope(url) as s:
        admin = s.exec(select(User).where(User.username == "admin")).one().id
    for strategy in sampling.STRATEGIES:
        start = time.perf_counter()
        with db.session_scope(url) as s:
            picked, result = workflow.fill_queue(
                session=s, con=analytics.connect(log_dir), strategy=strategy, size=200,
                seed=1, enqueued_by=admin,
            )  # fmt: skip
        took = time.perf_counter() - start
        print(f"{label:<10} fill_queue {strategy:<18} {result.added:>4} added of "
              f"{picked.candidates:>6} candidates  {took:6.2f} s")  # fmt: skip
    rounds = []
    for _ in range(200):
        start = time.perf_counter()
        with db.session_scope(url) as s:
            item = workflow.claim_next(session=s, reviewer_id=admin)
        if item is None:
            break
        with db.session_scope(url) as s:
            workflow.submit_review(
                session=s, item_id=item.id, reviewer_id=admin,
                judgement=workflow.Judgement(decision="approve", student_score=4),
            )  # fmt: skip
        rounds.append((time.perf_counter() - start) * 1000)
    print(f"{label:<10} claim+submit: {len(rounds)} rounds, median "
          f"{statistics.median(rounds):.1f} ms, max {max(rounds):.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--pg", help="admin URL of a PostgreSQL server (a database is made)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url = f"sqlite:///{home / 'bench.db'}"
        db.upgrade(url)
        start = time.perf_counter()
        generate.build(url=url, log_dir=home / "logs", pairs=args.pairs, days=60, seed=11)
        print(f"demo data: {args.pairs} pairs in {time.perf_counter() - start:.1f} s")
        bench_store(url, home / "logs", "sqlite")
        if args.pg:
            admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
            name = f"shadowtutor_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            pg = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
            try:
                db.upgrade(pg)
                generate.build(url=pg, log_dir=home / "logs-pg", pairs=args.pairs, days=60, seed=11)
                bench_store(pg, home / "logs-pg", "postgres")
            finally:
                db.get_engine(pg).dispose()
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()

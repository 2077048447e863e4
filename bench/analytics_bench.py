"""Benchmark the Cost and Quality pages' queries at millions of pairs, against pandas.

    /work/venv/bin/python bench/analytics_bench.py --pairs 1000000 5000000 --pandas-pairs 1000000

For each size it generates a synthetic shadow log (closed days as Parquet, in the layout
``log.compaction`` writes, with realistic prompt and answer texts) straight from DuckDB,
then in a fresh process:
- cold load: the first ``analytics.connect`` (builds the narrow ``facts`` table),
- each query of both pages, median of 5 warm runs,
- a whole page: connect (warm: no file changed) plus every query the page runs,
and the pandas baseline in another fresh process: read the JSONL files with
``pandas.read_json(lines=True)`` and compute the same figures (what a hand-written analysis
script does). Peak RSS is reported per process. The log folder is deleted afterwards unless
``--keep`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DAYS = 90
END = datetime(2026, 11, 1)

# One row a pair in the raw nested schema. Texts are a few hundred characters, like real chat
# answers, so a reader that has to parse them (JSONL, pandas) pays what it would in real life.
GENERATE = """
WITH base AS (
  SELECT i, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
    $start + to_microseconds(CAST(
      (i + 0.0) / $n * $days * 86400e6 + (random() - 0.5) * 3600e6 AS BIGINT)) AS t
  FROM range($n) AS r(i)
), shaped AS (
  SELECT *,
    CASE WHEN r1 < 0.45 THEN 'gpt-4o-mini' WHEN r1 < 0.75 THEN 'gpt-4o'
         WHEN r1 < 0.9 THEN 'claude-sonnet-4' WHEN r1 < 0.998 THEN 'gpt-4.1'
         ELSE 'in-house-llm' END AS tmodel,
    ['greeting', 'casual', 'business', 'travel', 'support', 'billing'][1 + CAST(r2 * 6 AS INT) % 6]
      AS cat,
    ['en', 'en', 'en', 'de', 'it', 'id', 'fr', 'es'][1 + CAST(r3 * 8 AS INT) % 8] AS lang,
    CAST(200 + r4 * 600 AS BIGINT) AS ptok, CAST(40 + r5 * 400 AS BIGINT) AS ctok,
    CASE WHEN r5 < 0.012 THEN 'student timed out after 10.0 s'
         WHEN r5 > 0.985 THEN 'HTTP 500 from student server' END AS serr
  FROM base
)
SELECT
  md5(CAST(i AS VARCHAR)) AS id,
  strftime(t, '%Y-%m-%dT%H:%M:%S.') || lpad(CAST(millisecond(t) % 1000 AS VARCHAR), 3, '0')
    || 'Z' AS ts,
  1 AS schema_version,
  CASE WHEN r4 < 0.85 THEN 'live' WHEN r4 < 0.97 THEN 'replay' ELSE 'playground' END AS source,
  substr(md5(CAST(i % 50000 AS VARCHAR)), 1, 16) AS user_hash,
  md5(CAST(i // 4 AS VARCHAR)) AS conversation_id,
  cat AS category, lang AS language,
  CAST('[{"role":"system","content":"You are a friendly assistant for a travel company."},'
    || '{"role":"user","content":"Question ' || CAST(i AS VARCHAR) || ' about ' || cat
    || ': can you help me plan a trip, and what documents do I need for it?"}]' AS JSON)
    AS messages,
  {'model': tmodel, 'provider': 'openai',
   'response': 'Of course! ' || repeat('Here is a detailed and helpful answer. ', 6 + CAST(r5 * 12 AS INT)),
   'latency_ms': 400 + ctok * 4.0 + r3 * 900, 'ttft_ms': 200 + r2 * 300,
   'prompt_tokens': ptok, 'completion_tokens': ctok,
   'cost_usd': CASE tmodel WHEN 'gpt-4o-mini' THEN (ptok * 0.15 + ctok * 0.60) / 1e6
     WHEN 'gpt-4o' THEN (ptok * 2.5 + ctok * 10.0) / 1e6
     WHEN 'claude-sonnet-4' THEN (ptok * 3.0 + ctok * 15.0) / 1e6
     WHEN 'gpt-4.1' THEN (ptok * 2.0 + ctok * 8.0) / 1e6 END,
   'price_version': '2026-11-01', 'error': CAST(NULL AS VARCHAR)} AS teacher,
  {'model': 'llama3.1:8b', 'provider': 'ollama',
   'response': CASE WHEN serr IS NULL THEN 'Sure. ' || repeat('A shorter local answer. ', 5 + CAST(r4 * 10 AS INT)) END,
   'latency_ms': CASE WHEN serr IS NULL THEN 250 + ctok * 3.0 + r1 * 700 END,
   'ttft_ms': 120 + r1 * 200, 'prompt_tokens': ptok, 'completion_tokens': ctok,
   'cost_usd': CASE WHEN serr IS NULL THEN 0.0 END, 'price_version': '2026-11-01', 'error': serr}
    AS student,
  {'method': 'lexical', 'score': CASE WHEN serr IS NULL THEN least(1.0, 0.35 + r2 * 0.4 + r3 * 0.3) END}
    AS similarity,
  {'served_by': 'teacher', 'stage': 0.0, 'bucket': r1 * 100, 'eligible': cat IN ('greeting', 'casual')}
    AS routing,
  CAST('{"app_version": "2.3.1"}' AS JSON) AS metadata,
  strftime(t, '%Y-%m-%d') AS date
FROM shaped
"""  # noqa: E501


def generate(folder: Path, n: int, jsonl: bool) -> dict:
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false; SELECT setseed(0.42)")
    params = {"n": n, "days": DAYS, "start": END - timedelta(days=DAYS)}
    t0 = time.perf_counter()
    if jsonl:  # generated once, written twice
        con.execute(f"CREATE TEMP TABLE gen AS {GENERATE}", params)
    source = "SELECT * FROM gen" if jsonl else GENERATE
    con.execute(
        f"COPY ({source}) TO '{folder / 'parquet'}' "
        "(FORMAT parquet, PARTITION_BY (date), FILENAME_PATTERN 'part-{i}')",
        {} if jsonl else params,
    )
    out = {"generate_parquet_s": time.perf_counter() - t0}
    if jsonl:  # the same pairs as JSONL, one file a day, for the pandas baseline
        t0 = time.perf_counter()
        con.execute(
            f"COPY (SELECT * FROM gen) TO '{folder / 'jsonl'}' (FORMAT json, "
            "PARTITION_BY (date), FILENAME_PATTERN 'bench-{i}', FILE_EXTENSION 'jsonl')"
        )
        out["generate_jsonl_s"] = time.perf_counter() - t0
    for kind in ("parquet", "jsonl"):
        files = (folder / kind).rglob("*") if (folder / kind).exists() else []
        out[f"{kind}_bytes"] = sum(p.stat().st_size for p in files if p.is_file())
    return out


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that over
    from the parent across fork and exec, so a child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _median_ms(fn, runs: int = 3) -> float:  # noqa: ANN001
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def duck(folder: Path) -> dict:
    """Every query of both pages on a log folder holding Parquet only (closed days)."""
    import page_queries  # bench/ is on the path (run as a script)

    from shadowtutor import pricing
    from shadowtutor.dashboards import quality, spend
    from shadowtutor.log import analytics

    log = folder / "duck"
    log.mkdir(exist_ok=True)
    link = log / "parquet"
    if not link.exists():
        link.symlink_to(folder / "parquet")
    t0 = time.perf_counter()
    con = analytics.connect(log, "UTC")
    cold = time.perf_counter() - t0
    prices = pricing.load_table()
    now = END - timedelta(hours=3)
    last30 = analytics.Filters(start=(now - timedelta(days=29)).date(), end=now.date())
    everything = analytics.Filters()
    one_cat = analytics.Filters(categories=("business",), languages=("en",))

    def cost_page(f: analytics.Filters) -> None:
        page_queries.cost_page(log, now, prices, f)

    def quality_page(f: analytics.Filters) -> None:
        page_queries.quality_page(log, f)

    queries = {
        "connect (warm, no file changed)": lambda f: analytics.connect(log, "UTC"),
        "filter_options": lambda f: analytics.filter_options(con),
        "spend_windows": lambda f: spend.spend_windows(con, now),
        "cost_coverage": lambda f: spend.cost_coverage(con, f, prices),
        "spend_by_day": lambda f: spend.spend_by_day(con, f),
        "spend_by_hour": lambda f: spend.spend_by_hour(con, f),
        "spend_heatmap": lambda f: spend.spend_heatmap(con, f),
        "spend_by model": lambda f: spend.spend_by(con, f, "model"),
        "spend_by category": lambda f: spend.spend_by(con, f, "category"),
        "top_prompts (20, texts read back)": lambda f: (
            spend._PROMPTS.clear(),  # time the read-back, not the cache
            spend.top_prompts(con, f, 20),
        ),
        "savings_inputs": lambda f: spend.savings_inputs(con, f, {"greeting", "casual"}),
        "similarity_by_day": lambda f: quality.similarity_by_day(con, f, "lexical", 0.8),
        "similarity_histogram": lambda f: quality.similarity_histogram(con, f, "lexical"),
        "similarity_by language": lambda f: quality.similarity_by(
            con, f, "lexical", "language", 0.8
        ),  # noqa: E501
        "latency_by_day (P50/P95/P99)": lambda f: quality.latency_by_day(con, f),
        "student_failures_by_day": lambda f: quality.student_failures_by_day(con, f),
        "side_by_side": lambda f: quality.side_by_side(con, f, method="lexical"),
    }
    out: dict = {"cold_load_s": cold, "pairs": analytics.count_pairs(con, everything)}
    for label, f in (("all", everything), ("last30", last30), ("filtered", one_cat)):
        out[label] = {name: _median_ms(lambda q=q, f=f: q(f)) for name, q in queries.items()}
        out[label]["Cost page (all queries)"] = _median_ms(lambda f=f: cost_page(f), 3)
        out[label]["Quality page (all queries)"] = _median_ms(lambda f=f: quality_page(f), 3)
    out["peak_rss_mb"] = _peak_rss_mb()
    out["facts_memory"] = con.execute("SELECT memory_usage FROM pragma_database_size()").fetchone()[
        0
    ]
    out["load_average"] = os.getloadavg()
    return out


def duck_jsonl(folder: Path) -> dict:
    """Cold load of the narrow table straight from JSONL (a log nobody compacted)."""
    from shadowtutor.log import analytics

    log = folder / "duckjsonl"
    log.mkdir(exist_ok=True)
    link = log / "jsonl"
    if not link.exists():
        link.symlink_to(folder / "jsonl")
    t0 = time.perf_counter()
    con = analytics.connect(log, "UTC")
    cold = time.perf_counter() - t0
    n = analytics.count_pairs(con, analytics.Filters())
    return {
        "cold_load_jsonl_s": cold,
        "pairs": n,
        "peak_rss_mb": _peak_rss_mb(),
    }


def pandas_baseline(folder: Path, limit_files: int | None) -> dict:
    """What a hand-written script does: read every JSONL file, flatten, group."""
    import pandas as pd

    files = sorted((folder / "jsonl").rglob("*.jsonl"))[: limit_files or None]
    t0 = time.perf_counter()
    frames = [pd.read_json(p, lines=True, dtype=False) for p in files]
    df = pd.concat(frames, ignore_index=True)
    del frames
    for side in ("teacher", "student"):
        flat = pd.json_normalize(df[side].tolist()).add_prefix(f"{side}_")
        df = pd.concat([df.drop(columns=[side]), flat], axis=1)
    df["similarity_score"] = [s.get("score") if s else None for s in df["similarity"]]
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    load = time.perf_counter() - t0

    t1 = time.perf_counter()
    df["day"] = df["ts"].dt.date
    df["hour"] = df["ts"].dt.floor("h")
    df["weekday"] = df["ts"].dt.weekday
    cost = "teacher_cost_usd"
    df.groupby("day")[cost].agg(["sum", "count"])
    df.groupby("hour")[cost].sum()
    df.groupby(["weekday", df["ts"].dt.hour])[cost].sum()
    for dim in ("teacher_model", "category", "language", "source"):
        df.groupby(dim)[cost].sum().sort_values(ascending=False)
    top = df.nlargest(20, cost)
    [m[-1]["content"] for m in top["messages"]]
    df[df[cost].isna()].groupby("teacher_model").size()
    ok = df[df["student_error"].isna()]
    ok.groupby("day")["similarity_score"].agg(["mean", "median"])
    ok.groupby("day")["similarity_score"].quantile(0.1)
    (ok["similarity_score"] >= 0.8).groupby(ok["day"]).mean()
    for dim in ("language", "category"):
        ok.groupby(dim)["similarity_score"].mean()
    for side in ("teacher", "student"):
        df.groupby("day")[f"{side}_latency_ms"].quantile([0.5, 0.95, 0.99])
    df.groupby("day")["student_error"].apply(lambda s: s.notna().mean())
    compute = time.perf_counter() - t1
    return {
        "pairs": len(df),
        "files": len(files),
        "load_s": load,
        "compute_s": compute,
        "total_s": load + compute,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--pandas-pairs", type=int, default=1_000_000,
                    help="largest size also written as JSONL and timed with pandas")  # fmt: skip
    ap.add_argument("--dir", default="/tmp/shadowtutor-bench")
    ap.add_argument("--keep", action="store_true", help="keep the generated logs")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, folder, extra = args.child
        fn = {
            "duck": lambda: duck(Path(folder)),
            "duckjsonl": lambda: duck_jsonl(Path(folder)),
            "pandas": lambda: pandas_baseline(Path(folder), int(extra) or None),
            "generate": lambda: generate(Path(folder), abs(int(extra)), int(extra) > 0),
        }[kind]
        print(json.dumps(fn(), default=str))
        return
    results = {}
    try:
        for n in args.pairs:
            folder = Path(args.dir) / f"n{n}"
            shutil.rmtree(folder, ignore_errors=True)
            with_jsonl = n <= args.pandas_pairs
            r = {"generate": _child("generate", str(folder), str(n if with_jsonl else -n))}
            print(f"[{n:,}] generated {r['generate']}", file=sys.stderr)
            r["duck"] = _child("duck", str(folder), "0")
            print(f"[{n:,}] duckdb done", file=sys.stderr)
            if with_jsonl:
                r["duck_jsonl"] = _child("duckjsonl", str(folder), "0")
                r["pandas"] = _child("pandas", str(folder), "0")
                print(f"[{n:,}] pandas done", file=sys.stderr)
            results[n] = r
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    print(json.dumps(results, indent=1, default=str))
    print(report(results))


def report(results: dict) -> str:
    sizes = list(results)
    lines = [f"generated on {date.today()}", "", "| query (median ms) | "
             + " | ".join(f"{n:,} all / last 30 d / filtered" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]  # fmt: skip
    for name in results[sizes[0]]["duck"]["all"]:
        cells = []
        for n in sizes:
            d = results[n]["duck"]
            cells.append(" / ".join(f"{d[k][name]:,.0f}" for k in ("all", "last30", "filtered")))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    for n in sizes:
        r = results[n]
        d = r["duck"]
        lines.append(
            f"- {n:,} pairs: Parquet log {r['generate']['parquet_bytes'] / 1e9:.2f} GB"
            + (f", JSONL {r['generate']['jsonl_bytes'] / 1e9:.2f} GB" if "pandas" in r else "")
            + "; cold load from "
            f"Parquet {d['cold_load_s']:.2f} s; narrow table {d['facts_memory']}; DuckDB process "
            f"peak RSS {d['peak_rss_mb']:,.0f} MB; load average during the run "
            f"{', '.join(f'{x:.1f}' for x in d['load_average'])} on 2 cores"
        )
        if "pandas" in r:
            p, j = r["pandas"], r["duck_jsonl"]
            page = d["all"]["Cost page (all queries)"] + d["all"]["Quality page (all queries)"]
            lines.append(
                f"  - pandas from JSONL: load {p['load_s']:.1f} s + compute {p['compute_s']:.1f} s"
                f" = {p['total_s']:.1f} s, peak RSS {p['peak_rss_mb']:,.0f} MB; DuckDB both pages"
                f" (warm) {page / 1000:.2f} s -> {p['total_s'] * 1000 / page:,.0f}x faster; "
                f"DuckDB cold from Parquet + both pages {d['cold_load_s'] + page / 1000:.2f} s -> "
                f"{p['total_s'] / (d['cold_load_s'] + page / 1000):,.0f}x; DuckDB cold from JSONL"
                f" {j['cold_load_jsonl_s']:.1f} s (peak RSS {j['peak_rss_mb']:,.0f} MB)"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Benchmark of the shadow collector's cost to the app (run by hand; numbers go in the README).

    cd /work/main && /work/venv/bin/python bench/collector_bench.py --calls 2000 --delay-ms 10

Measures, in one run:

1. **Wrapper**: ``client.chat.completions.create`` through ``collector.wrap(client)`` versus
   the plain ``openai.OpenAI`` client, calls interleaved (plain, wrapped, plain, ...), against a
   loopback teacher with a fixed delay. Reported: p50/p99 of each and of the difference, plus
   the wrapper's own request-path work timed alone (decide + hand-off, no network).
2. **Proxy**: the same calls via ``shadowtutor proxy`` (its own process, as deployed) versus
   straight to the teacher.
3. **Records/s**: the background pipeline on one worker thread (cost, lexical similarity,
   detection, record building, JSON, append) and the bare ``LogWriter``.

The loopback teacher and student run in a separate process so their work does not share the
app's interpreter; the student answers at once, so the shadow workers are busy during the
wrapper measurement, as in production.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

MSGS = [
    {"role": "system", "content": "You are the assistant of an Italian bakery."},
    {"role": "user", "content": "Ciao! Vorrei ordinare due torte per sabato, quanto costano?"},
]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return f"p50 {pct(values, 50):7.3f} ms   p99 {pct(values, 99):7.3f} ms"


# --- servers in their own process ---------------------------------------------------------------


def serve(delay_ms: float) -> None:
    from shadowtutor.testing.loopback import ModelServer

    answer = "Ciao! Due torte costano 40 euro in tutto; le prepariamo per sabato mattina."
    teacher = ModelServer(models=["gpt-4o-mini"], answer=answer, delay=delay_ms / 1000)
    student = ModelServer(models=["llama3"], answer="Ciao, due torte costano 40 euro.")
    others = [  # for --only students: two more students, one of them slower than the teacher
        ModelServer(models=["qwen2.5:7b"], answer="Due torte: 40 euro.", delay=0.002),
        ModelServer(models=["mistral:7b"], answer="Ciao! 40 euro per due.", delay=0.05),
    ]
    urls = {"teacher": teacher.openai_url, "student": student.url}
    urls |= {f"student{i + 2}": s.url for i, s in enumerate(others)}
    print(json.dumps(urls), flush=True)
    sys.stdin.read()  # until the parent closes our stdin


def start_servers(delay_ms: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--delay-ms", str(delay_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def start_proxy(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "shadowtutor.cli", "proxy", "--port", str(port)],
        cwd=ROOT,
        env=os.environ | env | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the proxy did not start")


# --- measurements -------------------------------------------------------------------------------


def bench_wrapper(urls: dict[str, str], env: dict[str, str], calls: int) -> dict[str, Any]:
    import openai

    from shadowtutor.collect.collector import ShadowCollector
    from shadowtutor.collect.job import Context
    from shadowtutor.collect.openai_shape import ChatRequest
    from shadowtutor.config import Settings

    settings = Settings.load(env)
    plain = openai.OpenAI(base_url=urls["teacher"], api_key="sk-bench", max_retries=0)
    inner = openai.OpenAI(base_url=urls["teacher"], api_key="sk-bench", max_retries=0)
    collector = ShadowCollector(settings)
    wrapped = collector.wrap(inner)
    for client in (plain, wrapped):  # warm up connections and imports
        for _ in range(20):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    collector.flush()
    before = collector.stats()["logged"]
    t_plain: list[float] = []
    t_wrapped: list[float] = []
    cpu = {"plain": 0.0, "wrapped": 0.0}
    pairs = [(plain, t_plain, "plain"), (wrapped, t_wrapped, "wrapped")]
    for i in range(calls):
        for client, out, name in pairs if i % 2 else pairs[::-1]:  # alternate who goes first
            start, c0 = time.perf_counter(), time.thread_time()
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
            cpu[name] += time.thread_time() - c0
            out.append((time.perf_counter() - start) * 1000)
    collector.flush(120)
    stats = collector.stats()
    # The request path's own work, timed alone: context, decide (routing, sampling), hand-off.
    # The hand-off (put_nowait) wakes a worker; the job says the student already failed so
    # the worker does not call it, which keeps this loop about the request path alone.
    own: list[float] = []
    answer = {"model": "gpt-4o-mini", "choices": [{"message": {"content": "ok"}}]}
    for _ in range(calls):
        start = time.perf_counter()
        request = ChatRequest.parse({"model": "gpt-4o-mini", "messages": MSGS}, coerce=True)
        call = collector.begin(request, Context.from_shadow(None))
        call.student_error = "bench: not called"
        collector.hand_off(call, teacher_obj=answer, teacher_latency_ms=1.0)
        own.append((time.perf_counter() - start) * 1000)
    collector.close()
    diffs = [w - p for w, p in zip(t_wrapped, t_plain, strict=True)]
    return {
        "plain": t_plain,
        "wrapped": t_wrapped,
        "diff": diffs,
        "own": own,
        "logged": stats["logged"] - before,
        "dropped": stats["dropped"],
        "student_errors": stats["student_errors"],
        "cpu_plain_ms": cpu["plain"] / calls * 1000,
        "cpu_wrapped_ms": cpu["wrapped"] / calls * 1000,
    }


def bench_proxy(urls: dict[str, str], env: dict[str, str], calls: int) -> dict[str, Any]:
    import httpx

    from shadowtutor.testing.loopback import _free_port

    port = _free_port()
    proc = start_proxy(env, port)
    try:
        body = {"model": "gpt-4o-mini", "messages": MSGS}
        direct = httpx.Client(base_url=urls["teacher"], headers={"authorization": "Bearer k"})
        via = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/v1", headers={"authorization": "Bearer k"}
        )
        for client in (direct, via):
            for _ in range(20):
                client.post("/chat/completions", json=body).raise_for_status()
        t_direct: list[float] = []
        t_via: list[float] = []
        pairs = [(direct, t_direct), (via, t_via)]
        cpu0 = proc_cpu(proc.pid)
        for i in range(calls):
            for client, out in pairs if i % 2 else pairs[::-1]:
                start = time.perf_counter()
                client.post("/chat/completions", json=body).raise_for_status()
                out.append((time.perf_counter() - start) * 1000)
        time.sleep(1.0)
        proxy_cpu_ms = (proc_cpu(proc.pid) - cpu0) / calls * 1000
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()["collector"]
    finally:
        proc.terminate()
        proc.wait(30)
    diffs = [v - d for v, d in zip(t_via, t_direct, strict=True)]
    return {
        "direct": t_direct,
        "via": t_via,
        "diff": diffs,
        "health": health,
        "cpu_ms": proxy_cpu_ms,
    }


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_records(env: dict[str, str], n: int) -> dict[str, float]:
    from shadowtutor.backends import ChatResult
    from shadowtutor.collect.collector import Job, ShadowCollector
    from shadowtutor.config import Settings
    from shadowtutor.log import record as logrecord
    from shadowtutor.log.store import LogWriter

    settings = Settings.load(env)
    teacher_text = "Ciao! Due torte costano 40 euro in tutto; le prepariamo per sabato mattina."
    student = ChatResult(
        "llama3", "ollama", "Ciao, due torte costano 40 euro.", 900.0, 120.0, 30, 12
    )
    collector = ShadowCollector(
        settings, workers=1, queue_size=n + 1, log_dir=Path(env["SHADOWTUTOR_HOME"]) / "rec-bench"
    )
    jobs = [
        Job(
            messages=MSGS,
            teacher={"model": "gpt-4o-mini", "response": teacher_text, "latency_ms": 800.0},
            student_result=student,
        )
        for _ in range(n)
    ]
    start, cpu = time.perf_counter(), time.process_time()
    for job in jobs:
        collector.submit(job)
    collector.flush(600)
    pipeline = n / (time.perf_counter() - start)
    pipeline_cpu = n / (time.process_time() - cpu)
    assert collector.stats()["logged"] == n, collector.stats()
    collector.close()
    sample = logrecord.make_record(
        messages=MSGS,
        teacher={"model": "gpt-4o-mini", "response": teacher_text},
        student={"model": "llama3", "response": "Ciao, due torte costano 40 euro."},
    )
    records = [dict(sample, id=logrecord.new_id()) for _ in range(n)]
    writer = LogWriter(Path(env["SHADOWTUTOR_HOME"]) / "writer-bench")
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, n, 500):
        writer.append_many(records[i : i + 500])
    raw = n / (time.perf_counter() - start)
    raw_cpu = n / (time.process_time() - cpu)
    writer.close()
    return {
        "pipeline": pipeline,
        "pipeline_cpu": pipeline_cpu,
        "writer": raw,
        "writer_cpu": raw_cpu,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--delay-ms", type=float, default=10.0)
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--only", choices=["records", "proxy", "students"], help="Run one part only.")
    args = ap.parse_args()
    if args.serve:
        serve(args.delay_ms)
        return
    home = tempfile.mkdtemp(prefix="shadowtutor-bench-")
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.only == "records":
        r = bench_records({"SHADOWTUTOR_HOME": home}, args.records)
        print(f"records/s pipeline {r['pipeline']:,.0f} wall, {r['pipeline_cpu']:,.0f} per CPU-s")
        print(f"records/s writer {r['writer']:,.0f} wall, {r['writer_cpu']:,.0f} per CPU-s")
        return
    servers, urls = start_servers(args.delay_ms)
    env = {
        "SHADOWTUTOR_HOME": home,
        "SHADOWTUTOR_TEACHER_BASE_URL": urls["teacher"],
        "SHADOWTUTOR_TEACHER_API_KEY": "sk-bench",
        "SHADOWTUTOR_STUDENT_BASE_URL": urls["student"],
        "SHADOWTUTOR_QUEUE_SIZE": "10000",
    }
    os.environ.update(env)  # routing reads the rollout state from this home's database
    from shadowtutor import db

    if args.only == "students":  # the request path with 1 student versus 3 (fan-out)
        bench_students(urls, env, args.calls, args.delay_ms)
        servers.stdin.close()
        return
    if args.only == "proxy":  # forwarding alone (nothing shadowed) versus shadowing all
        db.upgrade(settings_db_url(env))
        for share in ("0", "100"):
            p = bench_proxy(urls, env | {"SHADOWTUTOR_SAMPLE_PERCENT": share}, args.calls)
            print(f"sample {share:>3}%: direct {summary(p['direct'])}")
            print(f"             via    {summary(p['via'])}")
            print(
                f"             added  {summary(p['diff'])}; proxy CPU/request {p['cpu_ms']:.3f} ms"
            )
        servers.stdin.close()
        return
    db.upgrade(settings_db_url(env))
    try:
        w = bench_wrapper(urls, env, args.calls)
        print(f"\nteacher: loopback, fixed delay {args.delay_ms:g} ms; {args.calls} calls each way")
        print(f"plain client       {summary(w['plain'])}")
        print(f"wrapped client     {summary(w['wrapped'])}")
        print(f"  added (paired)   {summary(w['diff'])}")
        print(f"  request-path work alone (decide + hand-off) {summary(w['own'])}")
        print(
            f"  CPU on the app's thread per call: plain {w['cpu_plain_ms']:.3f} ms, "
            f"wrapped {w['cpu_wrapped_ms']:.3f} ms"
        )
        print(
            f"  records logged {w['logged']}, dropped {w['dropped']}, "
            f"student errors {w['student_errors']}",
            flush=True,
        )
        p = bench_proxy(urls, env, args.calls)
        print(f"direct to teacher  {summary(p['direct'])}")
        print(f"via proxy          {summary(p['via'])}")
        print(f"  added (paired)   {summary(p['diff'])}")
        print(f"  proxy process CPU per request (forwarding + shadowing): {p['cpu_ms']:.3f} ms")
        h = p["health"]
        print(
            f"  proxy collector: logged {h['logged']}, dropped {h['dropped']}, "
            f"student errors {h['student_errors']}",
            flush=True,
        )
    finally:
        assert servers.stdin is not None
        servers.stdin.close()
        servers.wait(10)
    r = bench_records(env, args.records)
    print(
        f"records/s, collector pipeline on one worker: {r['pipeline']:,.0f} wall, "
        f"{r['pipeline_cpu']:,.0f} per CPU-second"
    )
    print(
        f"records/s, LogWriter.append_many alone:      {r['writer']:,.0f} wall, "
        f"{r['writer_cpu']:,.0f} per CPU-second"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def bench_students(urls: dict[str, str], env: dict[str, str], calls: int, delay_ms: float) -> None:
    """The wrapper's added request-path time with the default student alone, then with three
    registered students (each its own backend and breaker; one slower than the teacher)."""
    from shadowtutor import auth, db, students

    for n in (1, 3):
        home = tempfile.mkdtemp(prefix=f"shadowtutor-bench-{n}-")
        run_env = env | {"SHADOWTUTOR_HOME": home}
        os.environ.update(run_env)
        url = settings_db_url(run_env)
        db.upgrade(url)
        if n == 3:
            with db.session_scope(url) as session:
                for name, model, key in (
                    ("llama", "llama3", "student"),
                    ("qwen", "qwen2.5:7b", "student2"),
                    ("mistral", "mistral:7b", "student3"),
                ):
                    students.add(
                        session=session,
                        actor_id=auth.SYSTEM,
                        name=name,
                        backend="ollama",
                        model=model,
                        base_url=urls[key],
                    )
        w = bench_wrapper(urls, run_env, calls)
        print(f"{n} student(s), teacher delay {delay_ms:g} ms, {calls} calls each way:")
        print(f"  plain client     {summary(w['plain'])}")
        print(f"  wrapped client   {summary(w['wrapped'])}")
        print(f"  added (paired)   {summary(w['diff'])}")
        print(f"  request-path work alone (decide + hand-off) {summary(w['own'])}")
        print(
            f"  CPU on the app's thread per call: plain {w['cpu_plain_ms']:.3f} ms, "
            f"wrapped {w['cpu_wrapped_ms']:.3f} ms; records logged {w['logged']}, "
            f"dropped {w['dropped']}",
            flush=True,
        )


def settings_db_url(env: dict[str, str]) -> str:
    from shadowtutor.config import Settings

    return Settings.load(env).db_url


if __name__ == "__main__":
    main()

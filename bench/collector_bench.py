"""Benchmark of the shadow collector's cost to the app (run by hand; numbers go in the README).

    cd /work/main && .venv/bin/python bench/collector_bench.py            # issue 17's setup
    .venv/bin/python bench/collector_bench.py --only proxy --litellm-python /opt/litellm/bin/python
    .venv/bin/python bench/collector_bench.py --only messages --calls 200   # /v1/messages vs chat
    .venv/bin/python bench/collector_bench.py --only router   # the router's decision, per call

One run, against a loopback teacher with a fixed delay (50 ms by default), with the official
``openai`` client as the caller (one client per target, reusing its connections as an app's
client does). At concurrency 1, ``--calls`` calls per target in 4 rounds, each round giving
every target a block of consecutive calls (the order rotating): the shadow work of one call
(the companion's wake-ups, the student answering at once on the same machine, the record)
overlaps the next call of the same target, as it does for an app (:func:`block_rounds`); at
concurrency 8, twice as many interleaved rounds (each round calls every target once):

1. **Proxy**: ``shadowtutor proxy`` (its own process, as deployed, companion on) with every
   call shadowed, the same with forwarding only (sample 0%), and optionally the LiteLLM proxy
   (``--litellm-python PATH``, a Python with ``litellm[proxy]``), each against straight to the
   teacher: added p50/p99, the added p50 of the time to first token of a stream, and the CPU
   per request of the proxy process and its children (the companion) read from /proc.
2. **Wrapper**: the plain ``openai.OpenAI`` client versus ``collector.wrap(client)`` with every
   call shadowed and the student answering at once (so the shadow work is busy), with the
   companion process and with the in-process workers; CPU per wrapped call = this process's
   CPU minus the plain calls' (measured alone) plus the companion's.
3. **Records/s**: the background pipeline on one worker thread and the bare ``LogWriter``.

The loopback teacher and student run in a separate process; their CPU is not counted. The
host load average is printed with every figure (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

MSGS = [
    {"role": "system", "content": "You are the assistant of an Italian bakery."},
    {"role": "user", "content": "Ciao! Vorrei ordinare due torte per sabato, quanto costano?"},
]


CLAUDE = "claude-haiku-4-5"


def make_tools(n: int) -> list[dict[str, Any]]:
    """``n`` function tools of a realistic size (a description, four typed parameters, two
    required, an enum): about 500 bytes each as JSON, 10 kB for 20."""
    return [
        {
            "type": "function",
            "function": {
                "name": f"tool_{i:02d}_lookup",
                "description": f"Look up record kind {i} for the bakery's order desk by its id.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "description": "The record's id."},
                        "when": {"type": "string", "description": "ISO date, optional."},
                        "count": {"type": "integer", "minimum": 1, "maximum": 50},
                        "mode": {"type": "string", "enum": ["fast", "exact", "cached"]},
                    },
                    "required": ["id", "count"],
                    "additionalProperties": False,
                },
            },
        }
        for i in range(n)
    ]


# What every benchmarked call carries besides the messages (``--tools N``: N tools).
EXTRA: dict[str, Any] = {}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return f"p50 {pct(values, 50):7.3f} ms   p99 {pct(values, 99):7.3f} ms"


# --- servers in their own process ---------------------------------------------------------------


def serve(delay_ms: float) -> None:
    from shadowtutor.testing.modelserver import ModelServer

    answer = "Ciao! Due torte costano 40 euro in tutto; le prepariamo per sabato mattina."
    teacher = ModelServer(
        models=["gpt-4o-mini", CLAUDE], answer=answer, delay=delay_ms / 1000
    )  # chat at /v1/chat/completions, Claude's Messages at /v1/messages
    student = ModelServer(models=["llama3"], answer="Ciao, due torte costano 40 euro.")
    others = [  # for --only students: two more students, one of them slower than the teacher
        ModelServer(models=["qwen2.5:7b"], answer="Due torte: 40 euro.", delay=0.002),
        ModelServer(models=["mistral:7b"], answer="Ciao! 40 euro per due.", delay=0.05),
    ]
    urls = {"teacher": teacher.openai_url, "teacher_root": teacher.url, "student": student.url}
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
    from shadowtutor.testing.faults import wait_until_up

    return wait_until_up(proc, f"http://127.0.0.1:{port}/healthz", what="the proxy")


# --- measurements -------------------------------------------------------------------------------


def cpu_model() -> str:
    """The host's CPU as /proc/cpuinfo names it: the same code costs ~1.4x the CPU on one
    2-vCPU VM of this kind as on another, so figures are compared on one host."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min) / {five:.2f} (5 min) on {os.cpu_count()} CPUs ({cpu_model()})"


def tree_cpu(pid: int, exclude: set[int] = frozenset()) -> float:  # type: ignore[assignment]
    """CPU seconds of ``pid`` and all its descendants (not those under ``exclude``)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[1])
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p in tree or p in exclude:
            continue
        tree.add(p)
        todo.extend(c for c, pp in parents.items() if pp == p)
    total = 0.0
    for p in tree:
        try:
            total += proc_cpu(p)
        except OSError:
            pass
    return total


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rounds(
    targets: dict[str, Callable[[], Any]], n: int, concurrency: int
) -> dict[str, list[float]]:
    """``n`` interleaved rounds (one call to every target, the order rotating each round),
    spread over ``concurrency`` threads; each target's latencies in ms."""
    names = list(targets)
    out: dict[str, list[float]] = {name: [] for name in names}
    lock = threading.Lock()

    def worker(first: int) -> None:
        for r in range(first, n, concurrency):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                start = time.perf_counter()
                targets[name]()
                took = (time.perf_counter() - start) * 1000
                with lock:
                    out[name].append(took)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def block_rounds(
    targets: dict[str, Callable[[], Any]], per_target: int, n_rounds: int
) -> dict[str, list[float]]:
    """What an app sees: ``n_rounds`` rounds; in each, every target gets ``per_target /
    n_rounds`` calls in a row at c=1 (the order of the targets rotating each round), so a
    shadowed call's background work (the companion's wake-ups, the student's answer, the
    record) lands on the same cores while the next call of the same target runs, as it does
    for an app that calls the proxy steadily. Per-call interleaving hides that: the work then
    overlaps other targets' calls."""
    names = list(targets)
    out: dict[str, list[float]] = {name: [] for name in names}
    size = max(1, per_target // n_rounds)
    for r in range(n_rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            for _ in range(size):
                start = time.perf_counter()
                targets[name]()
                out[name].append((time.perf_counter() - start) * 1000)
    return out


def chat(client: Any, **kw: Any) -> Callable[[], Any]:
    return lambda: client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, **EXTRA, **kw)


def ttft(client: Any) -> Callable[[], float]:
    """A streamed call; the time to the first content chunk is what ``rounds`` sees as its
    latency only if we return early, so we time it ourselves and read the rest."""

    def go() -> float:
        start = time.perf_counter()
        first = None
        with client.chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, stream=True, **EXTRA
        ) as s:
            for chunk in s:
                delta = chunk.choices[0].delta if chunk.choices else None
                if first is None and delta and (delta.content or delta.tool_calls):
                    first = (time.perf_counter() - start) * 1000
        return first if first is not None else float("nan")

    return go


def ttft_rounds(targets: dict[str, Callable[[], float]], n: int) -> dict[str, list[float]]:
    names = list(targets)
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(n):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(targets[name]())
    return out


def start_litellm(python: str, teacher: str, port: int) -> subprocess.Popen[bytes]:

    cfg = Path(tempfile.mkdtemp(prefix="litellm-bench-")) / "config.yaml"
    cfg.write_text(
        "model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n"
        f"      model: openai/gpt-4o-mini\n      api_base: {teacher}\n      api_key: sk-bench\n"
    )
    proc = subprocess.Popen(
        [python, "-m", "litellm", "--config", str(cfg), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from shadowtutor.testing.faults import wait_until_up

    url = f"http://127.0.0.1:{port}/health/liveliness"
    return wait_until_up(proc, url, what="litellm", timeout_s=120, pause=0.5)


def row(name: str, lat: dict[str, list[float]], base: str, **extra: str) -> dict[str, str]:
    d50 = pct(lat[name], 50) - pct(lat[base], 50)
    d99 = pct(lat[name], 99) - pct(lat[base], 99)
    return {"p50": f"{d50:+.1f} ms", "p99": f"{d99:+.1f} ms", **extra}


def bench_proxies(
    urls: dict[str, str], env: dict[str, str], calls: int, litellm: str | None
) -> list[str]:
    """Proxy shadowed, forwarding only and (optionally) LiteLLM against straight-to-teacher."""
    import httpx
    import openai

    from shadowtutor.testing.listeners import free_port

    procs: dict[str, subprocess.Popen[Any]] = {}
    base_urls = {"teacher": urls["teacher"]}
    try:
        for name, share in (("shadowed", "100"), ("forwarding", "0")):
            port = free_port()
            procs[name] = start_proxy(
                env | {"SHADOWTUTOR_SAMPLE_PERCENT": share, "SHADOWTUTOR_COMPANION": "1"}, port
            )
            base_urls[name] = f"http://127.0.0.1:{port}/v1"
        if litellm:
            port = free_port()
            procs["litellm"] = start_litellm(litellm, urls["teacher"], port)
            base_urls["litellm"] = f"http://127.0.0.1:{port}/v1"
        clients = {
            n: openai.OpenAI(base_url=u, api_key="sk-bench", max_retries=0)
            for n, u in base_urls.items()
        }
        warm = {n: chat(c) for n, c in clients.items()}
        rounds(warm, 40, 4)
        results: dict[str, dict[str, str]] = {n: {} for n in clients}
        for conc, n in ((1, calls), (8, calls * 2)):
            cpu0 = {k: tree_cpu(p.pid) for k, p in procs.items()}
            # c=1: in blocks (what an app sees; see block_rounds); c=8: interleaved calls.
            lat = block_rounds(warm, n, 4) if conc == 1 else rounds(warm, n, conc)
            time.sleep(1.0)  # the shadow work of the last calls
            cpu = {k: (tree_cpu(p.pid) - cpu0[k]) / n * 1000 for k, p in procs.items()}
            for name in procs:
                r = row(name, lat, "teacher")
                results[name][f"c{conc}"] = f"{r['p50']} / {r['p99']}"
                results[name][f"cpu{conc}"] = f"{cpu[name]:.2f}"
            results["teacher"][f"c{conc}"] = (
                f"p50 {pct(lat['teacher'], 50):.1f} / p99 {pct(lat['teacher'], 99):.1f} ms"
            )
            results["teacher"][f"load{conc}"] = load()
            print(f"  proxies c={conc} done, {load()}", flush=True)
        idle0 = {k: tree_cpu(p.pid) for k, p in procs.items()}
        time.sleep(10.0)  # nothing sent: what the proxy (and its companion) burn idle
        idle = {k: (tree_cpu(p.pid) - idle0[k]) / 10.0 * 1000 for k, p in procs.items()}
        for name in procs:
            results[name]["idle"] = f"{idle[name]:.1f}"
        streams = ttft_rounds({k: ttft(c) for k, c in clients.items()}, max(50, calls // 3))
        for name in procs:
            d = pct(streams[name], 50) - pct(streams["teacher"], 50)
            results[name]["ttft"] = f"{d:+.1f} ms"
        health = httpx.get(base_urls["shadowed"].removesuffix("/v1") + "/healthz").json()
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(30)
    h = health["collector"]
    labels = {
        "shadowed": "our proxy, every call shadowed",
        "forwarding": "our proxy, forwarding only (sample 0%)",
        "litellm": "LiteLLM proxy (no shadowing)",
    }
    lines = [
        f"teacher alone (c=1 / c=8): {results['teacher']['c1']} / {results['teacher']['c8']}",
        "",
        "| target | +p50 / +p99 c=1 | stream TTFT +p50 | CPU ms/request c=1 (c=8) "
        "| +p50 / +p99 c=8 | CPU idle ms/s |",
        "|---|---|---|---|---|---|",
    ]
    for name in procs:
        r = results[name]
        lines.append(
            f"| {labels[name]} | {r['c1']} | {r['ttft']} | {r['cpu1']} ({r['cpu8']}) | {r['c8']} "
            f"| {r['idle']} |"
        )
    lines.append("")
    lines.append(
        f"host: c=1 phase {results['teacher']['load1']}; c=8 phase {results['teacher']['load8']}"
    )
    lines.append(
        f"shadowed proxy's collector: logged {h['logged']}, dropped {h['dropped']}, "
        f"student errors {h['student_errors']}, companion {h.get('companion')}"
    )
    return lines


def bench_messages(urls: dict[str, str], env: dict[str, str], calls: int) -> list[str]:
    """One shadowed proxy (its own process, companion on), every call shadowed: chat through it
    (official openai client) against chat straight to the teacher, then Claude's Messages API
    through it (official anthropic client) against Messages straight to the teacher; the added
    p50/p99 and the proxy's CPU per request (with its companion), each API in its own phase."""
    import anthropic
    import httpx
    import openai

    from shadowtutor.testing.listeners import free_port

    port = free_port()
    proc = start_proxy(
        env
        | {
            "SHADOWTUTOR_SAMPLE_PERCENT": "100",
            "SHADOWTUTOR_COMPANION": "1",
            "SHADOWTUTOR_ANTHROPIC_BASE_URL": urls["teacher_root"],
        },
        port,
    )
    proxy = f"http://127.0.0.1:{port}"

    def claude(base_url: str) -> Callable[[], Any]:
        client = anthropic.Anthropic(base_url=base_url, api_key="sk-bench", max_retries=0)
        system, user = MSGS[0]["content"], MSGS[1]
        return lambda: client.messages.create(
            model=CLAUDE, max_tokens=256, system=system, messages=[user]
        )

    def gpt(base_url: str) -> Callable[[], Any]:
        return chat(openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0))

    targets = {
        "chat": {"direct": gpt(urls["teacher"]), "proxy": gpt(f"{proxy}/v1")},
        "messages": {"direct": claude(urls["teacher_root"]), "proxy": claude(proxy)},
    }
    lines = [
        "| API through the shadowed proxy | concurrency | +p50 / +p99 | CPU ms/request | host |",
        "|---|---|---|---|---|",
    ]
    try:
        for pair in targets.values():
            rounds(pair, 40, 4)  # warm
        for conc, n in ((1, calls), (8, calls * 2)):
            for api, pair in targets.items():
                cpu0 = tree_cpu(proc.pid)
                lat = rounds(pair, n, conc)
                time.sleep(1.0)  # the shadow work of the last calls
                cpu = (tree_cpu(proc.pid) - cpu0) / n * 1000
                r = row("proxy", lat, "direct")
                lines.append(f"| {api} | {conc} | {r['p50']} / {r['p99']} | {cpu:.2f} | {load()} |")
                print(f"  {api} c={conc} done", flush=True)
        h = httpx.get(f"{proxy}/healthz").json()["collector"]
    finally:
        proc.terminate()
        proc.wait(30)
    lines.append(
        f"collector: logged {h['logged']}, dropped {h['dropped']}, "
        f"student errors {h['student_errors']}"
    )
    return lines


def bench_wrappers(
    urls: dict[str, str], env: dict[str, str], calls: int, companion: bool
) -> list[str]:
    """Plain client vs wrapped (every call shadowed, the student answering at once)."""
    import openai

    from shadowtutor.collect.collector import ShadowCollector
    from shadowtutor.config import Settings

    settings = Settings.load(env | {"SHADOWTUTOR_COMPANION": "1" if companion else "0"})
    plain = openai.OpenAI(base_url=urls["teacher"], api_key="sk-bench", max_retries=0)
    inner = openai.OpenAI(base_url=urls["teacher"], api_key="sk-bench", max_retries=0)
    collector = ShadowCollector(settings)
    wrapped = collector.wrap(inner)
    targets = {"plain": chat(plain), "wrapped": chat(wrapped)}
    rounds(targets, 40, 4)
    collector.flush(60)
    companion_pid = collector.companion.pid if collector.companion is not None else None
    # CPU of a plain call alone, to take out of the interleaved run's total.
    c0 = time.process_time()
    for _ in range(200):
        targets["plain"]()
    plain_cpu = (time.process_time() - c0) / 200
    before = collector.stats()["logged"]
    out = [f"wrapper ({'companion process' if companion else 'in-process workers'}):"]
    print(out[0], flush=True)
    for conc, n in ((1, calls), (8, calls * 2)):
        c0 = time.process_time()
        k0 = proc_cpu(companion_pid) if companion_pid else 0.0
        lat = rounds(targets, n, conc)
        collector.flush(120)
        wrapped_cpu = (time.process_time() - c0 - plain_cpu * n) / n * 1000
        side = ((proc_cpu(companion_pid) - k0) / n * 1000) if companion_pid else 0.0
        added = wrapped_cpu - plain_cpu * 1000 + side
        r = row("wrapped", lat, "plain")
        out.append(
            f"  c={conc}: plain p50 {pct(lat['plain'], 50):.2f} ms p99 {pct(lat['plain'], 99):.2f}"
            f" ms; wrapped {r['p50']} / {r['p99']} (p50 / p99 added); CPU per call: plain "
            f"{plain_cpu * 1000:.2f} ms, wrapped {wrapped_cpu:.2f} ms in the app + {side:.2f} ms "
            f"in the companion = {added:+.2f} ms added; {load()}"
        )
        print(out[-1], flush=True)
    stats = collector.stats()
    collector.close()
    out.append(
        f"  records logged {stats['logged'] - before}, dropped {stats['dropped']}, "
        f"student errors {stats['student_errors']}, companion failures "
        f"{stats['companion_failures']}"
    )
    return out


def bench_records(env: dict[str, str], n: int) -> dict[str, float]:
    from shadowtutor.backends import Answer
    from shadowtutor.collect.collector import ShadowCollector
    from shadowtutor.collect.job import Job
    from shadowtutor.config import Settings
    from shadowtutor.log import schema
    from shadowtutor.log.write import LogWriter

    settings = Settings.load(env)
    teacher_text = "Ciao! Due torte costano 40 euro in tutto; le prepariamo per sabato mattina."
    student = Answer("llama3", "ollama", "Ciao, due torte costano 40 euro.", 900.0, 120.0, 30, 12)
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
    sample = schema.make_record(
        messages=MSGS,
        teacher={"model": "gpt-4o-mini", "response": teacher_text},
        student={"model": "llama3", "response": "Ciao, due torte costano 40 euro."},
    )
    records = [dict(sample, id=schema.new_id()) for _ in range(n)]
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
    ap.add_argument("--calls", type=int, default=600, help="Rounds at c=1 (twice at c=8).")
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--litellm-python", help="A Python with litellm[proxy]: adds it as a target.")
    ap.add_argument(
        "--tools",
        type=int,
        default=0,
        help="Every call carries this many tools (the teacher answers with a tool call).",
    )
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--only",
        choices=["records", "proxy", "wrapper", "students", "path", "messages", "router"],
        help="Run one part only (messages: Claude's Messages API through the proxy vs chat).",
    )
    args = ap.parse_args()
    if args.serve:
        serve(args.delay_ms)
        return
    if args.tools:
        EXTRA["tools"] = make_tools(args.tools)
    home = tempfile.mkdtemp(prefix="shadowtutor-bench-")

    print(f"at the start: {load()}")
    if args.only == "router":
        print("\n".join(bench_router(args.calls * 40)), flush=True)
        print(f"at the end: {load()}")
        return
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

    if args.only == "path":  # the request path's own work: plain against --tools (20)
        db.upgrade(settings_db_url(env))
        print("\n".join(bench_path(env, args.calls * 4, args.tools or 20)), flush=True)
        servers.stdin.close()
        return
    if args.only == "students":  # the request path with 1 student versus 3 (fan-out)
        bench_students(urls, env, args.calls, args.delay_ms)
        servers.stdin.close()
        return
    db.upgrade(settings_db_url(env))
    print(
        f"teacher: loopback, fixed delay {args.delay_ms:g} ms; official openai client; "
        f"{args.calls} interleaved rounds at c=1, {args.calls * 2} at c=8; "
        f"{args.tools} tools a request",
        flush=True,
    )
    try:
        if args.only in (None, "proxy"):
            print("\n".join(bench_proxies(urls, env, args.calls, args.litellm_python)), flush=True)
        if args.only in (None, "messages"):
            print("\n".join(bench_messages(urls, env, args.calls)), flush=True)
        if args.only in (None, "wrapper"):
            for companion in (True, False):
                print(bench_wrappers(urls, env, args.calls, companion)[-1], flush=True)
    finally:
        assert servers.stdin is not None
        servers.stdin.close()
        try:  # a loaded host can take longer than 10 s to let it finish its last requests
            servers.wait(30)
        except subprocess.TimeoutExpired:
            servers.kill()
            servers.wait(10)
    if args.only is None:
        r = bench_records(env, args.records)
        print(
            f"records/s, collector pipeline on one worker: {r['pipeline']:,.0f} wall, "
            f"{r['pipeline_cpu']:,.0f} per CPU-second"
        )
        print(
            f"records/s, LogWriter.append_many alone:      {r['writer']:,.0f} wall, "
            f"{r['writer_cpu']:,.0f} per CPU-second"
        )
    print(f"at the end: {load()}")


def bench_path(env: dict[str, str], n: int, tools: int) -> list[str]:
    """The request path's own work per call, plain against ``tools`` tools: what the proxy
    does for a body it has read (parse it, its kind and features; decide: route, sample,
    category; after the answer, hand the pair off with the teacher's raw reply), on this
    thread, and the companion's share of taking the job over the pipe (its workers then
    ask the student, compare and write: work off the request path, measured too). Both
    bodies alternate in blocks of 50 so the host's load falls on both alike."""
    import json as jsonlib

    from shadowtutor import fastjson
    from shadowtutor.collect.collector import ShadowCollector
    from shadowtutor.collect.job import Context
    from shadowtutor.collect.openai_shape import ChatRequest
    from shadowtutor.config import Settings

    settings = Settings.load(env | {"SHADOWTUTOR_COMPANION": "1"})
    collector = ShadowCollector(settings)
    pid = collector.companion.pid if collector.companion is not None else None
    bodies = {
        "plain": {"model": "gpt-4o-mini", "messages": MSGS},
        f"{tools} tools": {"model": "gpt-4o-mini", "messages": MSGS, "tools": make_tools(tools)},
    }
    raws = {
        "plain": jsonlib.dumps(
            {"id": "c", "object": "chat.completion", "model": "gpt-4o-mini", "choices": [
                {"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Due torte costano 40 euro."}}],
             "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}}
        ).encode(),
    }  # fmt: skip
    call_msg = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "tool_03_lookup", "arguments": '{"id": "A7", "count": 2}'}}
        ],
    }  # fmt: skip
    tool_raw = jsonlib.loads(raws["plain"])
    tool_raw["choices"][0] |= {"finish_reason": "tool_calls", "message": call_msg}
    raws[f"{tools} tools"] = jsonlib.dumps(tool_raw).encode()
    spent = dict.fromkeys(bodies, 0.0)
    side = dict.fromkeys(bodies, 0.0)
    done = dict.fromkeys(bodies, 0)

    sent = {name: jsonlib.dumps(body).encode() for name, body in bodies.items()}

    def one(name: str) -> None:
        body = fastjson.loads(sent[name])  # as the proxy reads the body it forwards as sent
        request = ChatRequest.parse(body)
        call = collector.begin(request, Context())
        collector.hand_off(call, teacher_latency_ms=50.0, teacher_raw=raws[name])

    for name in bodies:  # warm up: imports, the routing state, the companion's first jobs
        for _ in range(50):
            one(name)
    collector.flush(60)
    for block in range(n // 50):
        for name in bodies if block % 2 == 0 else reversed(list(bodies)):
            k0 = proc_cpu(pid) if pid else 0.0
            c0 = time.thread_time()
            for _ in range(50):
                one(name)
            spent[name] += time.thread_time() - c0
            collector.flush(60)  # the companion's work for this block, then its CPU
            side[name] += (proc_cpu(pid) - k0) if pid else 0.0
            done[name] += 50
    stats = collector.stats()
    collector.close()
    out = [f"request path, {n} calls of each, alternating blocks of 50 ({load()}):"]
    for name in bodies:
        out.append(
            f"  {name:>9}: {spent[name] / done[name] * 1e6:7.1f} µs a call on the request "
            f"thread; the companion (taking the job, student, compare, record) "
            f"{side[name] / done[name] * 1000:.2f} ms a call"
        )
    out.append(
        f"  records logged {stats['logged']}, dropped {stats['dropped']}, "
        f"student errors {stats['student_errors']}"
    )
    return out


def bench_students(urls: dict[str, str], env: dict[str, str], calls: int, delay_ms: float) -> None:
    """The wrapper's added request-path time with the default student alone, then with three
    registered students (each its own backend and breaker; one slower than the teacher)."""
    from shadowtutor import db, students
    from shadowtutor.accounts import permissions

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
                        actor_id=permissions.SYSTEM,
                        name=name,
                        backend="ollama",
                        model=model,
                        base_url=urls[key],
                    )
        print(f"{n} student(s), teacher delay {delay_ms:g} ms, {calls} rounds at c=1:", flush=True)
        bench_wrappers(urls, run_env, calls, companion=True)  # prints its lines as it goes


def settings_db_url(env: dict[str, str]) -> str:
    from shadowtutor.config import Settings

    return Settings.load(env).db_url


def bench_router(n: int) -> list[str]:
    """The router's decision on the request path (``router.live.decide``: the request's text
    and markers, the hashed tokens, the dot product, the threshold), each call timed alone,
    wall (``perf_counter_ns``: the loaded host's preemptions included) and this thread's CPU
    (``thread_time_ns``: the decision's own cost), for its p50/p99/p99.9: a router trained on
    3,000 demo requests; the bench's bakery request, the demo's own requests, a 1,200-character
    one (the router reads its last 400), and requests whose every word is new (the token hash
    cache misses)."""
    import random

    from shadowtutor import similarity
    from shadowtutor.demo.generate import generate_pairs
    from shadowtutor.gate.routing import Route
    from shadowtutor.router import features, live, model

    pairs = [p.record for p in generate_pairs(pairs=3000, days=10, seed=3)]
    examples = [
        model.Example(
            features.request_text(r["messages"], category=r["category"]),
            (similarity.lexical(r["teacher"]["response"], r["student"].get("response")) or 0) > 0.5,
        )
        for r in pairs
    ]
    t0 = time.process_time()
    scorer = model.fit(examples)
    trained = time.process_time() - t0
    active = live.Active(1, "routed", {"business": 0.6, "casual": 0.5, "greeting": 0.3}, scorer)
    route = Route("student", 100, 5.0, True, "llama")
    rng = random.Random(0)
    long_text = " ".join(
        rng.choice(["prenotazione", "bagaglio", "rimborso", "volo", "data"]) for _ in range(400)
    )[:1200]  # fmt: skip (the router reads its last 500)
    cases = {
        "bakery request": [MSGS],
        "demo requests": [r["messages"] for r in pairs[:500]],
        "1,200 chars": [[{"role": "user", "content": long_text}]],
        "all words new": [
            [{"role": "user", "content": " ".join(f"w{rng.getrandbits(40):x}" for _ in range(30))}]
            for _ in range(n)
        ],
    }
    out = [f"router decision, {n:,} calls each, one timed call at a time ({load()}):"]
    out.append(f"  trained on {len(examples):,} requests in {trained:.1f} CPU-s, "
               f"{len(scorer.weights):,} non-zero weights")  # fmt: skip
    for name, requests in cases.items():
        out.append(
            _timed(
                f"{name:>15}",
                n,
                lambda i, reqs=requests: live.decide(
                    route, active, messages=reqs[i % len(reqs)], category="business"
                ),
            )
        )
    return out + _bench_validator(n, pairs)


def _timed(name: str, n: int, call: Any) -> str:
    """``call(i)`` for i in range(n), each timed alone (wall and this thread's CPU): one line
    of p50 / p99 / p99.9 in µs."""
    import statistics

    times, cpu = [], []
    for i in range(n):
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        call(i)
        c1, t1 = time.thread_time_ns(), time.perf_counter_ns()
        times.append((t1 - t0) / 1000)
        cpu.append((c1 - c0) / 1000)
    q, qc = statistics.quantiles(times, n=1000), statistics.quantiles(cpu, n=1000)
    return (
        f"  {name}: wall p50 {statistics.median(times):5.1f} p99 {q[989]:6.1f} "
        f"p99.9 {q[998]:7.1f} µs | CPU p50 {statistics.median(cpu):5.1f} p99 {qc[989]:6.1f} "
        f"p99.9 {qc[998]:6.1f} µs"
    )


def _bench_validator(n: int, pairs: list[dict[str, Any]]) -> list[str]:
    """The cascade's check of one student answer (``live.check``: the validator's score of the
    request and the answer, on the request path after the student answered)."""
    import dataclasses
    import random

    from shadowtutor import similarity
    from shadowtutor.gate.routing import Route
    from shadowtutor.router import features, live, model

    answered = [r for r in pairs if r["student"].get("response")]
    examples = [
        model.Example(
            features.validator_text(r["messages"], r["student"], category=r["category"]),
            (similarity.lexical(r["teacher"]["response"], r["student"].get("response")) or 0) > 0.5,
        )
        for r in answered
    ]
    validator = model.fit(examples)
    active = live.Active(1, "cascade", {}, validator, validator=validator)
    route = dataclasses.replace(
        Route("student", 100, 5.0, True, "llama", router_version=1), validator_threshold=0.5
    )
    rng = random.Random(1)
    long_answer = " ".join(
        rng.choice(["the", "order", "moves", "to", "friday"]) for _ in range(1200)
    )
    cases = {
        "demo answers": [(r["messages"], r["student"]) for r in answered[:500]],
        "5,000-char answer": [(MSGS, {"response": long_answer[:5000], "finish_reason": "stop"})],
    }
    out = [f"validator check (cascade), {n:,} calls each, one timed call at a time ({load()}):"]
    for name, items in cases.items():
        out.append(
            _timed(
                f"{name:>17}",
                n,
                lambda i, its=items: live.check(
                    route,
                    active,
                    messages=its[i % len(its)][0],
                    answer=its[i % len(its)][1],
                    category="business",
                ),
            )
        )
    return out


if __name__ == "__main__":
    main()

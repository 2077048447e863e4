"""Feedback events accepted per minute on one core (issue 30: "well beyond 10,000/min").

    .venv/bin/python bench/feedback_bench.py [--seconds 10] [--batch 50] [--clients 8]

Three figures, each with the load average before and after (the host is shared):

* ``collector.feedback``: one thread calling ``collector.feedback(request_id, "thumbs", ...)``
  in a loop (every event checked, deduplicated, written to the log before the call returns).
* ``POST /v1/feedback``, one event a request: ``shadowtutor proxy`` pinned to CPU 0
  (``taskset -c 0``), ``--clients`` keep-alive connections posting from this process pinned to
  CPU 1 (a bare asyncio HTTP/1.1 client), for ``--seconds``.
* ``POST /v1/feedback``, ``--batch`` events a request (an app's buffered events).

Every event is distinct (a new request id): nothing is a duplicate. At the end the log's
feedback part is read back (``log.feedback.scan``) and must hold every accepted event once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.config import Settings
from shadowtutor.log import feedback
from shadowtutor.testing.faults import wait_until_up
from shadowtutor.testing.listeners import free_port


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def bench_collector(home: Path, seconds: float) -> tuple[int, float]:
    settings = Settings.load({"SHADOWTUTOR_HOME": str(home)})
    c = ShadowCollector(settings, refresh_routing=False, companion=False)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            out = c.feedback(f"c{n}", "thumbs", "down" if n % 7 == 0 else "up", comment=None)
            assert out.status == "accepted", out
            n += 1
    took = time.perf_counter() - start
    c.close()
    return n, took


async def post_events(
    port: int, seconds: float, clients: int, batch: int, tag: str
) -> tuple[int, float]:
    """``clients`` keep-alive connections posting for ``seconds``; the events accepted. A
    bare asyncio HTTP/1.1 client: httpx's own CPU per request would be the bottleneck."""
    accepted = 0
    counter = 0
    start = time.perf_counter()

    async def client(k: int) -> None:
        nonlocal accepted, counter
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() - start < seconds:
            counter += 1
            events = [
                {"request_id": f"{tag}{k}-{counter}-{i}", "kind": "rating", "value": i % 6}
                for i in range(batch)
            ]
            body = json.dumps(events[0] if batch == 1 else events).encode()
            writer.write(
                b"POST /v1/feedback HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                b"content-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            answer = json.loads(await reader.readexactly(length))
            if batch == 1:
                accepted += answer["status"] == "accepted"
            else:
                accepted += answer["counts"].get("accepted", 0)
        writer.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    return accepted, time.perf_counter() - start


def bench_proxy(
    home: Path, seconds: float, clients: int, batch: int, tag: str
) -> tuple[int, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTUTOR_")}
    env |= {"SHADOWTUTOR_HOME": str(home), "SHADOWTUTOR_COMPANION": "0"}
    proc = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "shadowtutor.cli", "proxy",
         "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}/healthz", what="proxy", timeout_s=60)
        os.sched_setaffinity(0, {1})
        return asyncio.run(post_events(port, seconds, clients, batch, tag))
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        runs = [
            ("collector.feedback (1 thread)", lambda: bench_collector(home, args.seconds)),
            (
                "POST /v1/feedback, 1 event a request",
                lambda: bench_proxy(home, args.seconds, args.clients, 1, "one"),
            ),
            (
                f"POST /v1/feedback, {args.batch} events a request",
                lambda: bench_proxy(home, args.seconds, args.clients, args.batch, "batch"),
            ),
        ]
        total = 0
        for name, run in runs:
            before = load()
            n, took = run()
            total += n
            print(
                f"{name}: {n:,} events in {took:.1f} s = {n / took * 60:,.0f} events/min "
                f"(load {before} before, {load()} after)"
            )
        found = feedback.scan(home / "logs")
        print(
            f"log: {found.events:,} events, {found.repeated} repeated, {len(found.bad)} bad lines "
            f"(accepted: {total:,})"
        )


if __name__ == "__main__":
    main()

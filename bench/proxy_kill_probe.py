"""Issue 27 item 1's probe: requests through `shadowtutor proxy` (companion on), the proxy
killed with SIGKILL twice under load and restarted, then: is every answered request in the
log, once?

    .venv/bin/python bench/proxy_kill_probe.py [--requests 3000] [--kills 2] [--concurrency 8]

A loopback teacher answers at once, a loopback student after ``--student-delay`` seconds (so
the companion falls behind and a backlog builds, as on a busy machine). Each request's
question names it (``p<N>``); after the last restart the log is read and every answered
request looked for. Prints answered, logged, missing (and their numbers), doubled, and what
the restarts counted (``recovered``, ``lost``, ``dropped``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import openai

from shadowtutor.log import read
from shadowtutor.testing.faults import wait_until_up
from shadowtutor.testing.listeners import free_port
from shadowtutor.testing.modelserver import ModelServer


def start(home: Path, teacher: ModelServer, student: ModelServer, port: int) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTUTOR_")}
    env |= {
        "SHADOWTUTOR_HOME": str(home),
        "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
        "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
        "SHADOWTUTOR_STUDENT_TIMEOUT_S": "5",
        "SHADOWTUTOR_BREAKER_FAILURES": "100000",
        "SHADOWTUTOR_COMPANION": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "shadowtutor.cli", "proxy", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return wait_until_up(proc, f"http://127.0.0.1:{port}/healthz", what="proxy", timeout_s=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--kills", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--student-delay", type=float, default=0.2)
    ap.add_argument("--pad", type=int, default=2000, help="characters added to each question")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="killprobe-"))
    port = free_port()
    answered: set[int] = set()
    lock = threading.Lock()
    nxt = iter(range(args.requests))
    health: list[dict[str, Any]] = []
    with (
        ModelServer(models=["gpt-4o-mini"]) as teacher,
        ModelServer(models=["llama3"], answer="ciao", delay=args.student_delay) as student,
    ):
        proc = start(home, teacher, student, port)
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0, timeout=30
        )

        def worker() -> None:
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    return
                while True:  # a request the kill cut is sent again (a new answer, same number)
                    try:
                        client.chat.completions.create(
                            model="gpt-4o-mini",
                            messages=[{"role": "user", "content": f"p{i} " + "x" * args.pad}],
                        )
                        break
                    except openai.APIError:
                        time.sleep(0.05)
                with lock:
                    answered.add(i)

        threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        step = args.requests // (args.kills + 1)
        for k in range(args.kills):
            while len(answered) < step * (k + 1):
                time.sleep(0.01)
            h = httpx.get(f"http://127.0.0.1:{port}/healthz").json()["collector"]
            health.append({"answered": len(answered), "queue_depth": h["queue_depth"],
                           "logged": h["logged"], "companion": h["companion"]})  # fmt: skip
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc = start(home, teacher, student, port)
        for t in threads:
            t.join()
        took = time.monotonic() - t0
        student.delay = 0.0
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        proc.wait(300)
        time.sleep(5)  # orphaned companions finish their dead parent's work
        proc = start(home, teacher, student, port)  # the last start recovers what is left
        time.sleep(3)
        last = httpx.get(f"http://127.0.0.1:{port}/healthz").json()["collector"]
        proc.send_signal(signal.SIGINT)
        proc.wait(300)
    counts: Counter[int] = Counter()
    recovered = 0
    for rec in read.iter_records(home / "logs"):
        counts[int(str(rec["messages"][-1]["content"]).split(" ", 1)[0][1:])] += 1
        recovered += bool((rec.get("metadata") or {}).get("recovered_from_journal"))
    missing = sorted(answered - set(counts))
    print(f"requests {args.requests}, kills {args.kills}, {took:.1f} s, load {os.getloadavg()}")
    for h in health:
        print("before a kill:", h)
    print(f"answered {len(answered)}, logged {len(counts)}, missing {len(missing)} "
          f"{missing[:20]}, doubled {sum(1 for v in counts.values() if v > 1)}, "
          f"records marked recovered_from_journal {recovered}")  # fmt: skip
    print("last start:", {k: last.get(k) for k in ("recovered", "lost", "dropped")})


if __name__ == "__main__":
    main()

"""The request path and the shadow log under faults (issue 12; run by hand, table in README).

    .venv/bin/python bench/faults.py                 # every fault, 300 requests each
    .venv/bin/python bench/faults.py --requests 200 --only student_down,kill_proxy

For each fault, an app sends requests through the wrapper (or the proxy, as its own
``shadowtutor proxy`` process) with every request shadowed (``SHADOWTUTOR_SAMPLE_PERCENT=100``),
interleaved with the same request sent straight to the teacher, from 4 threads. Reported per
fault: requests sent, app-visible failures (an exception or a non-200 the bare teacher would
not have given), the added latency (p50 / p99 of the path minus p50 / p99 of the bare calls),
records written, lost (counted: dropped, lost, invalid, unfinished at exit, and for kill -9 the
answers missing from the log), lost silently (shadowed requests neither written nor counted)
and duplicated (records with an id already written).

Faults: the student down / slow (past its timeout) / answering 500 / malformed JSON / cutting
its stream; the teacher slow (200 ms); ``DATABASE_URL`` at a listener that never answers; the
log folder on a 128 KB tmpfs that fills up, then grows (when a tmpfs cannot be mounted, a writer
whose ``os.write`` hits ENOSPC for the log folder, then recovers); ``kill -9`` of the proxy under
load, restarted at once on the same log folder; compaction of the day being written, every
200 ms; a 20 MB prompt among normal ones (proxy).

The loopback teacher and student run in their own process and take fault switches over stdin.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEACHER_DELAY_S = 0.01
THREADS = 4
MSGS = [
    {"role": "system", "content": "You are the assistant of an Italian bakery."},
    {"role": "user", "content": "Ciao! Vorrei ordinare due torte per sabato, quanto costano?"},
]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- servers in their own process, with fault switches over stdin ---------------------------


def serve() -> None:
    from shadowtutor.testing.modelserver import ModelServer

    answer = "Ciao! Due torte costano 40 euro in tutto; le prepariamo per sabato mattina."
    servers = {
        "teacher": ModelServer(models=["gpt-4o-mini"], answer=answer, delay=TEACHER_DELAY_S),
        "student": ModelServer(models=["llama3"], answer="Ciao, due torte costano 40 euro."),
    }
    urls = {"teacher": servers["teacher"].openai_url, "student": servers["student"].url}
    print(json.dumps(urls), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        srv = servers[cmd["who"]]
        if cmd.get("reset"):
            srv.reset()
            if cmd["who"] == "teacher":
                srv.delay = TEACHER_DELAY_S
        if cmd.get("down"):
            srv.down()
        if cmd.get("up"):
            srv.up()
        for key, value in (cmd.get("set") or {}).items():
            setattr(srv, key, value)
        print("ok", flush=True)


class Servers:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.urls = json.loads(self.proc.stdout.readline())

    def do(self, who: str, **cmd: Any) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"who": who, **cmd}) + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def reset(self) -> None:
        self.do("teacher", reset=True)
        self.do("student", reset=True, up=True)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


# --- the load -----------------------------------------------------------------------------------


class Load:
    """``n`` requests from THREADS threads: each a bare teacher call and a call through the
    path, in alternating order. ``send(i, path)`` makes request ``i`` (True: through the path);
    it raises on an app-visible failure."""

    def __init__(self, n: int, send: Callable[[int, bool], Any]):
        self.n, self.send = n, send
        self.bare: list[float] = []
        self.path: list[float] = []
        self.failures: list[str] = []
        self.answered: dict[int, float] = {}  # request -> when its answer reached the app
        self.lock = threading.Lock()
        self.next = 0

    def _take(self) -> int | None:
        with self.lock:
            if self.next >= self.n:
                return None
            self.next += 1
            return self.next - 1

    def _worker(self) -> None:
        while (i := self._take()) is not None:
            for through in (True, False) if i % 2 else (False, True):
                start = time.perf_counter()
                try:
                    self.send(i, through)
                except Exception as exc:
                    if through:
                        with self.lock:
                            self.failures.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                took = (time.perf_counter() - start) * 1000
                with self.lock:
                    (self.path if through else self.bare).append(took)
                    if through:
                        self.answered[i] = time.monotonic()

    def run(self, during: Callable[[Load], None] | None = None) -> Load:
        threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(THREADS)]
        for t in threads:
            t.start()
        if during:
            during(self)
        for t in threads:
            t.join()
        return self


def openai_client(base_url: str, retries: int = 0) -> Any:
    import openai

    return openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=retries, timeout=60)


def env_for(work: Path, urls: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        "SHADOWTUTOR_HOME": str(work / "home"),
        "SHADOWTUTOR_LOG_DIR": str(work / "logs"),
        "SHADOWTUTOR_TEACHER_BASE_URL": urls["teacher"],
        "SHADOWTUTOR_TEACHER_API_KEY": "sk-bench",
        "SHADOWTUTOR_STUDENT_BASE_URL": urls["student"],
        "SHADOWTUTOR_STUDENT_TIMEOUT_S": "1",
        "SHADOWTUTOR_SAMPLE_PERCENT": "100",
        **extra,
    }


def logged(log_dir: Path) -> list[dict[str, Any]]:
    from shadowtutor.log import read

    return list(read.iter_records(log_dir))


def row(
    fault: str,
    path: str,
    load: Load,
    records: list[dict[str, Any]],
    counted: int,
    note: str = "",
) -> dict[str, Any]:
    ids = [r["id"] for r in records]
    unique = len(set(ids))
    sent = load.n
    shadowed = sent - len(load.failures)  # a failed call has no teacher answer to log
    return {
        "fault": fault,
        "path": path,
        "sent": sent,
        "app_failures": len(load.failures),
        "added_p50_ms": pct(load.path, 50) - pct(load.bare, 50),
        "added_p99_ms": pct(load.path, 99) - pct(load.bare, 99),
        "written": unique,
        "lost_counted": counted,
        "lost_silently": max(0, shadowed - unique - counted),
        "duplicated": len(ids) - unique,
        "note": note or (load.failures[0] if load.failures else ""),
    }


LOSS_KEYS = ("dropped", "lost", "invalid", "unfinished_at_exit")


def counted_losses(stats: dict[str, Any]) -> int:
    return sum(int(stats.get(k, 0)) for k in LOSS_KEYS)


def loss_note(stats: dict[str, Any]) -> str:
    return ", ".join(f"{k} {stats[k]}" for k in LOSS_KEYS if stats.get(k))


# --- through the wrapper ----------------------------------------------------------------------


def wrapper_fault(
    fault: str,
    servers: Servers,
    work: Path,
    n: int,
    *,
    before: Callable[[], None] = lambda: None,
    during: Callable[[Load, Path], None] | None = None,
    after: Callable[[Path], None] = lambda _: None,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    restart: bool = False,
) -> dict[str, Any]:
    """``restart``: then start a collector on the same log folder (it writes what the
    journal still holds) and count again, so a pending answer is neither lost nor doubled."""
    from shadowtutor.collect.collector import ShadowCollector
    from shadowtutor.config import Settings

    extra = dict(env or {})
    if log_dir is not None:
        extra["SHADOWTUTOR_LOG_DIR"] = str(log_dir)
    settings = Settings.load(env_for(work, servers.urls, **extra))
    collector = ShadowCollector(settings)
    bare = openai_client(servers.urls["teacher"])
    wrapped = collector.wrap(openai_client(servers.urls["teacher"]))
    for client in (bare, wrapped):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)  # warm up
    collector.flush(30)
    warm = len(logged(settings.log_path))

    def send(i: int, through: bool) -> None:
        client = wrapped if through else bare
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, user=f"user-{i}")

    before()
    load = Load(n, send).run((lambda ld: during(ld, settings.log_path)) if during else None)
    after(settings.log_path)
    collector.close(timeout=120)
    stats = collector.stats()
    servers.reset()
    after_restart = ""
    if restart:
        again = ShadowCollector(settings)
        again.close(timeout=60)
        s2 = again.stats()
        after_restart = (
            f"a restart then wrote {s2['recovered']} pending answers "
            f"({s2['recovered_already_logged']} already logged, skipped)"
        )
    records = logged(settings.log_path)
    if warm:  # the warm-up call's record is not one of the n
        warm_ids = {r["id"] for r in sorted(records, key=lambda r: r["ts"])[:warm]}
        records = [r for r in records if r["id"] not in warm_ids]
    result = row(fault, "wrapper", load, records, counted_losses(stats))
    extra = loss_note(stats)
    if stats.get("write_errors"):
        extra = f"write errors {stats['write_errors']} (retried)" + (f", {extra}" if extra else "")
    result["note"] = "; ".join(x for x in (result["note"], extra, after_restart) if x)
    return result


def student_fault(name: str, **switch: Any) -> Callable[..., dict[str, Any]]:
    def run(servers: Servers, work: Path, n: int) -> dict[str, Any]:
        if switch.get("down"):
            before = lambda: servers.do("student", down=True)  # noqa: E731
        else:
            before = lambda: servers.do("student", set=switch)  # noqa: E731
        return wrapper_fault(name, servers, work, n, before=before)

    return run


def teacher_slow(servers: Servers, work: Path, n: int) -> dict[str, Any]:
    before = lambda: servers.do("teacher", set={"delay": 0.2})  # noqa: E731
    return wrapper_fault("teacher slow (200 ms)", servers, work, n, before=before)


def database_hung(servers: Servers, work: Path, n: int) -> dict[str, Any]:
    from shadowtutor.testing.listeners import SilentListener

    with SilentListener() as hung:
        url = f"postgresql://postgres@127.0.0.1:{hung.port}/shadowtutor"
        return wrapper_fault("database hung", servers, work, n, env={"DATABASE_URL": url})


def disk_full(servers: Servers, work: Path, n: int) -> dict[str, Any]:
    disk = work / "disk"
    disk.mkdir(parents=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(disk)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    fake = None
    if not mounted:
        from shadowtutor.testing.faults import FullDisk

        fake = FullDisk(disk, 128 * 1024)
        os.write = fake  # type: ignore[assignment]

    def grow(log_dir: Path) -> None:
        time.sleep(1.0)  # some write cycles fail first
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        else:
            assert fake is not None
            fake.grow()

    try:
        result = wrapper_fault(
            "disk full, then freed",
            servers,
            work,
            n,
            log_dir=disk / "logs",
            after=grow,
            restart=True,
        )
        how = "tmpfs 128 KB -> 64 MB" if mounted else "simulated ENOSPC (no tmpfs)"
        result["note"] = f"{how}; {result['note']}"
        return result
    finally:
        if fake is not None:
            os.write = fake.original  # type: ignore[assignment]
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def compacting(servers: Servers, work: Path, n: int) -> dict[str, Any]:
    from shadowtutor.log import compaction, read

    tomorrow = datetime.now(UTC).date() + timedelta(days=1)  # today counts as a closed day
    runs = [0]

    def during(load: Load, log_dir: Path) -> None:
        while load.next < load.n:
            compaction.compact(log_dir, today=tomorrow)
            runs[0] += 1
            time.sleep(0.2)

    def after(log_dir: Path) -> None:
        compaction.compact(log_dir, today=tomorrow)

    result = wrapper_fault("compaction during writes", servers, work, n, during=during, after=after)
    report = read.validate_log(work / "logs")
    result["note"] = f"{runs[0]} compactions; validate: {len(report.bad)} bad lines"
    return result


# --- through the proxy (its own process) ------------------------------------------------------


class ProxyProcess:
    def __init__(self, env: dict[str, str], port: int):
        self.env, self.port = env, port
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        from shadowtutor.testing.faults import wait_until_up

        proc = subprocess.Popen(
            [sys.executable, "-m", "shadowtutor.cli", "proxy", "--port", str(self.port)],
            cwd=ROOT,
            env=os.environ | self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{self.port}/healthz"
        return wait_until_up(proc, url, what="the proxy", pause=0.05)

    def stats(self) -> dict[str, Any]:
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=30).json()["collector"]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def restart(self) -> None:
        self.proc = self._start()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)  # uvicorn's shutdown flushes the collector
        self.proc.wait(120)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proxy_fault(
    fault: str,
    servers: Servers,
    work: Path,
    n: int,
    *,
    during: Callable[[Load, ProxyProcess], None] | None = None,
    retries: int = 0,
    big_prompt_mb: int = 0,
) -> dict[str, Any]:
    import httpx

    env = env_for(work, servers.urls)
    proxy = ProxyProcess(env, _free_port())
    base = f"http://127.0.0.1:{proxy.port}/v1"
    bare = openai_client(servers.urls["teacher"])
    via = openai_client(base, retries=retries)
    for client in (bare, via):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)  # warm up

    def send(i: int, through: bool) -> None:
        (via if through else bare).chat.completions.create(
            model="gpt-4o-mini",
            messages=MSGS,
            user=f"user-{i}",
            extra_headers={"X-ShadowTutor-Metadata": json.dumps({"bench_n": i})},
        )

    big_done: list[str] = []

    def big(load: Load) -> None:
        time.sleep(0.3)
        text = "x" * (big_prompt_mb * 1024 * 1024)
        try:
            resp = httpx.post(
                f"{base}/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
                headers={"X-ShadowTutor-Metadata": json.dumps({"bench_n": -1})},
                timeout=120,
            )
            big_done.append(str(resp.status_code))
        except httpx.HTTPError as exc:
            big_done.append(type(exc).__name__)

    def run_during(load: Load) -> None:
        if big_prompt_mb:
            big(load)
        if during:
            during(load, proxy)

    load = Load(n, send).run(run_during)
    restarted_stats = proxy.stats()
    proxy.stop()
    records = [r for r in logged(work / "logs") if (r.get("metadata") or {}).get("bench_n") != -1]
    records = [r for r in records if "bench_n" in (r.get("metadata") or {})]
    counted = counted_losses(restarted_stats)
    result = row(fault, "proxy", load, records, counted)
    result["_load"], result["_records"], result["_stats"] = load, records, restarted_stats
    if big_prompt_mb:
        ok = big_done == ["200"]
        result["app_failures"] += 0 if ok else 1
        result["note"] = f"{big_prompt_mb} MB prompt: {big_done[0] if big_done else 'not sent'}"
    return result


def kill_proxy(servers: Servers, work: Path, n: int, retries: int = 2) -> dict[str, Any]:
    killed_at: list[float] = []

    def during(load: Load, proxy: ProxyProcess) -> None:
        while load.next < load.n // 2:
            time.sleep(0.01)
        killed_at.append(time.monotonic())
        proxy.kill9()
        proxy.restart()  # at once, on the same log folder: it recovers the journal

    # calls in flight at the kill (or sent while it restarts) retry as the openai client does
    name = f"kill -9 of the proxy under load (client max_retries={retries})"
    result = proxy_fault(name, servers, work, n, during=during, retries=retries)
    load, records, stats = result.pop("_load"), result.pop("_records"), result.pop("_stats")
    written = {r["metadata"]["bench_n"] for r in records}
    missing = [i for i in load.answered if i not in written]
    ages = sorted((killed_at[0] - load.answered[i]) * 1000 for i in missing)
    result["lost_counted"] += len(missing)
    result["lost_silently"] = max(0, result["lost_silently"] - len(missing))
    result["note"] = (
        f"restart recovered {stats.get('recovered', 0)} from the journal "
        f"({stats.get('recovered_already_logged', 0)} already logged); "
        f"{len(missing)} answered but not logged (counted here, by the bench)"
        + (
            f", answered {max(abs(ages[0]), abs(ages[-1])):.0f} ms or less around the kill"
            if ages
            else ""
        )
        + (f"; {result['app_failures']} calls failed: {load.failures[0]}" if load.failures else "")
    )
    return result


def big_prompt(servers: Servers, work: Path, n: int) -> dict[str, Any]:
    return proxy_fault("a 20 MB prompt among normal ones", servers, work, n, big_prompt_mb=20)


def proxy_student_down(servers: Servers, work: Path, n: int) -> dict[str, Any]:
    servers.do("student", down=True)
    try:
        result = proxy_fault("student down", servers, work, n)
    finally:
        servers.reset()
    for k in ("_load", "_records", "_stats"):
        result.pop(k)
    return result


def _plain_proxy(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def run(*args: Any) -> dict[str, Any]:
        result = fn(*args)
        for k in ("_load", "_records", "_stats"):
            result.pop(k, None)
        return result

    return run


def no_fault_wrapper(servers: Servers, work: Path, n: int) -> dict[str, Any]:
    return wrapper_fault("none (baseline)", servers, work, n)


def no_fault_proxy(servers: Servers, work: Path, n: int) -> dict[str, Any]:
    return proxy_fault("none (baseline)", servers, work, n)


FAULTS: dict[str, Callable[[Servers, Path, int], dict[str, Any]]] = {
    "none_wrapper": no_fault_wrapper,
    "student_down": student_fault("student down", down=True),
    "student_slow": student_fault("student slow (2 s, timeout 1 s)", delay=2.0),
    "student_500": student_fault("student 500", status=500),
    "student_malformed": student_fault("student malformed JSON", malformed=True),
    "student_cut": student_fault("student stream cut", cut_after=1),
    "teacher_slow": teacher_slow,
    "database_hung": database_hung,
    "disk_full": disk_full,
    "compaction": compacting,
    "none_proxy": _plain_proxy(no_fault_proxy),
    "proxy_student_down": proxy_student_down,
    "kill_proxy": kill_proxy,
    "kill_proxy_retries": lambda servers, work, n: kill_proxy(servers, work, n, retries=5),
    "big_prompt": _plain_proxy(big_prompt),
}


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| fault | path | sent | app-visible failures | added p50 / p99 ms | written "
        "| lost (counted) | lost silently | duplicated | note |\n" + "|---" * 10 + "|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['fault']} | {r['path']} | {r['sent']} | {r['app_failures']} "
            f"| {r['added_p50_ms']:+.2f} / {r['added_p99_ms']:+.2f} | {r['written']} "
            f"| {r['lost_counted']} | {r['lost_silently']} | {r['duplicated']} | {r['note']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per fault")
    parser.add_argument("--only", help="comma-separated faults: " + ", ".join(FAULTS))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    import logging

    logging.disable(logging.WARNING)  # the faults are expected; the table says what happened
    names = args.only.split(",") if args.only else list(FAULTS)
    servers = Servers()
    top = Path(tempfile.mkdtemp(prefix="shadowtutor-faults-"))
    rows = []
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        for name in names:
            t0 = time.monotonic()
            work = top / name
            work.mkdir()
            result = FAULTS[name](servers, work, args.requests)
            servers.reset()
            rows.append(result)
            print(
                f"{name}: {time.monotonic() - t0:.1f} s  {json.dumps(result, default=str)}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        servers.close()
        shutil.rmtree(top, ignore_errors=True)
    print(table(rows))
    load_after = os.getloadavg()
    print(
        f"\n{len(rows)} faults in {time.monotonic() - started:.0f} s; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after ({os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
